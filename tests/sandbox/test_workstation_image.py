"""The workstation image carries the aws CLI (v1) and boto3 as pyproject.toml pins them, ready to run from its
read-only root filesystem, and the awscli plugins of the checkout it was built from."""
from __future__ import annotations

from dataclasses import replace

import pytest
from django.conf import settings

from sandbox.engine.images import AWSCLI_PLUGIN_DIR, AWSCLI_PLUGINS_CONFIG, default_recipes

RECIPES = {recipe.name: recipe for recipe in default_recipes(workstation_tag="sandcloud/workstation:1",
                                                             python_tag="sandcloud/python:3.11")}


def _run(client, script: str) -> str:
    """A script in a workstation container as hardened as a sandbox's root filesystem: read-only, an ordinary uid."""
    output = client.containers.run(settings.SANDCLOUD["WORKSTATION_IMAGE"], ["bash", "-c", script], remove=True,
                                   read_only=True, user="20001:20000", environment={"HOME": "/tmp"},
                                   network_mode="none", cap_drop=["ALL"], stderr=True)
    return output.decode()


def test_the_workstation_recipe_installs_the_clients_pyproject_pins():
    assert RECIPES["workstation"].python_requirements == ("awscli==1.46.2", "boto3==1.44.5", "botocore==1.44.8")
    assert RECIPES["python"].python_requirements == ()


def test_a_changed_plugin_rebuilds_the_image_but_not_its_debootstrapped_base():
    workstation = RECIPES["workstation"]
    changed = replace(workstation, awscli_plugins=(("sandcloud_logs_tail.py", b"def awscli_initialize(cli): pass\n"),))

    assert changed.digest != workstation.digest
    assert changed.base_digest == workstation.base_digest
    assert changed.awscli_plugins_config() == "[plugins]\nsandcloud_logs_tail = sandcloud_logs_tail\n"
    assert RECIPES["python"].digest == RECIPES["python"].base_digest  # nothing added: the python image is as before


@pytest.mark.docker
def test_the_aws_cli_runs_from_compiled_modules_on_the_read_only_root(docker_engine):
    version = _run(docker_engine.client, "aws --version")
    imports = _run(docker_engine.client, "python3 -v -c 'import awscli.clidriver, boto3' 2>&1")

    assert version.startswith("aws-cli/1.46.2 Python/3.11"), version
    # Every module came from bytecode made at build time: none had to be compiled (on every run, as nothing may be
    # written there) from its source.
    compiled_here = [line for line in imports.splitlines()
                     if line.startswith("# code object from") and "__pycache__" not in line]
    assert "dist-packages/awscli/__pycache__/clidriver.cpython-311.pyc matches" in imports
    assert compiled_here == []


@pytest.mark.docker
def test_the_images_plugins_are_importable_and_listed_for_the_learners_config(docker_engine):
    plugins = RECIPES["workstation"].awscli_plugins
    listing = _run(docker_engine.client, f"ls {AWSCLI_PLUGIN_DIR}; echo '#--'; cat {AWSCLI_PLUGINS_CONFIG} || true; "
                                         f"echo '#--'; stat -c '%U %a' /usr/local/bin/aws {AWSCLI_PLUGIN_DIR}")
    found, config, owners = listing.split("#--\n")

    assert found.split() == sorted(name for name, _ in plugins)  # ls lists them by name
    assert config == RECIPES["workstation"].awscli_plugins_config()
    assert owners.split("\n")[:2] == ["root 755", "root 755"]
    for name, _ in plugins:
        module = name.removesuffix(".py")
        assert _run(docker_engine.client, f"python3 -c 'import {module}; print({module}.__file__)'").strip() == \
            f"{AWSCLI_PLUGIN_DIR}/{name}"
