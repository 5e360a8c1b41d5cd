"""The editor's files: reading and writing a learner's home directory in their running sandbox, as their own uid."""
