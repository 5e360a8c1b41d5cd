"""The Lambda API (REST-JSON, 2015-03-31): one method per AWS action, each parsing nothing and deciding nothing itself;
the members arrive parsed and validated (sandbox/awsapi) and the work is done by services.py."""
from __future__ import annotations

from django.conf import settings

from sandbox.awsapi import pagination
from sandbox.awsapi.errors import AwsError

from . import services
from .models import LATEST
from .models import FunctionVersion as Version  # the API's members use the name FunctionVersion
from .selectors import alias_configuration, function_arn, function_get, functions_for, version_configuration

_UNSUPPORTED = {"VpcConfig": "VPCs", "Layers": "layers", "FileSystemConfigs": "EFS file systems",
                "DeadLetterConfig": "dead-letter queues", "KMSKeyArn": "KMS keys", "ImageConfig": "image configs",
                "CodeSigningConfigArn": "code signing", "CapacityProviderConfig": "capacity providers",
                "DurableConfig": "durable functions", "AcceleratorConfig": "accelerators"}


def _refuse_unsupported(members: dict) -> None:
    for name, what in _UNSUPPORTED.items():
        value = members.get(name)
        if value not in (None, [], {}) and not (name == "VpcConfig" and not any(value.values())):
            raise AwsError("InvalidParameterValueException", f"Sandcloud's Lambda has no {what} ({name}) yet: "
                                                             f"leave {name} out.")
    architectures = members.get("Architectures")
    if architectures and architectures != ["x86_64"]:
        raise AwsError("InvalidParameterValueException", "Sandcloud runs functions on x86_64 only.")
    if members.get("PackageType") == "Image":
        raise AwsError("InvalidParameterValueException", "Sandcloud runs container-image functions once its private "
                                                         "registry (ECR) is in place; use PackageType Zip for now.")


class FunctionsApi:
    """Lambda's actions, named as boto3 names them."""

    # --- functions -----------------------------------------------------------------------------------------------
    def create_function(self, context, *, FunctionName, Role, Code, Runtime=None, Handler=None, Description="",
                        Timeout=3, MemorySize=128, Publish=False, Environment=None, Tags=None,
                        EphemeralStorage=None, **members):
        _refuse_unsupported(members)
        if not Runtime or not Handler:
            raise AwsError("InvalidParameterValueException",
                           "Runtime and Handler are mandatory parameters for functions created with Zip packages.")
        name = FunctionName.split(":")[-1] if FunctionName.startswith("arn:") else FunctionName
        version = services.function_create(
            account=context.account, name=name, runtime=Runtime, role=Role, handler=Handler, code=Code,
            description=Description or "", timeout=Timeout, memory_size=MemorySize,
            environment=(Environment or {}).get("Variables") or {},
            ephemeral_storage=(EphemeralStorage or {}).get("Size", 512), tags=Tags or {}, publish=Publish)
        out = version_configuration(version, region=context.region)
        return out  # State Pending, as AWS answers a create; it is Active once this request has committed

    def get_function(self, context, *, FunctionName, Qualifier=None):
        function = function_get(account=context.account, name=FunctionName)
        version = services._resolve_qualifier(function, Qualifier or services._qualifier_in_name(FunctionName),
                                              route=False)
        out = {"Configuration": version_configuration(version, region=context.region),
               "Code": {"RepositoryType": "S3", "Location": ""}}
        if function.tags:
            out["Tags"] = dict(function.tags)
        if function.reserved_concurrency is not None:
            out["Concurrency"] = {"ReservedConcurrentExecutions": function.reserved_concurrency}
        return out

    def get_function_configuration(self, context, *, FunctionName, Qualifier=None):
        function = function_get(account=context.account, name=FunctionName)
        version = services._resolve_qualifier(function, Qualifier or services._qualifier_in_name(FunctionName),
                                              route=False)
        return version_configuration(version, region=context.region)

    def list_functions(self, context, *, Marker=None, MaxItems=None, FunctionVersion=None, MasterRegion=None):
        versions = Version.objects.filter(function__account=context.account).select_related(
            "function__account").order_by("function__name", "pk")
        if FunctionVersion != "ALL":
            versions = versions.filter(version=LATEST)
        items = list(versions)
        page = pagination.paginate(items, token=Marker, limit=pagination.page_size(MaxItems, default=50),
                                   scope=f"lambda:ListFunctions:{context.account_id}:{FunctionVersion}",
                                   key=lambda v: f"{v.function.name}\x00{v.pk:012d}")
        out = {"Functions": [version_configuration(v, region=context.region) for v in page.items]}
        if page.next_token:
            out["NextMarker"] = page.next_token
        return out

    def update_function_code(self, context, *, FunctionName, ZipFile=None, Publish=False, RevisionId=None,
                             DryRun=False, **members):
        _refuse_unsupported(members)
        if members.get("ImageUri") or members.get("S3Bucket"):
            services._code_from(context.account, {k: members.get(k) for k in ("ImageUri", "S3Bucket")})
        if DryRun:
            function = function_get(account=context.account, name=FunctionName)
            return version_configuration(function.versions.get(version=LATEST), region=context.region)
        version = services.function_update_code(account=context.account, function_name=FunctionName,
                                                zip_file=ZipFile, publish=Publish, revision_id=RevisionId)
        return version_configuration(version, region=context.region)

    def update_function_configuration(self, context, *, FunctionName, RevisionId=None, **members):
        _refuse_unsupported(members)
        names = {"Role": "role", "Handler": "handler", "Description": "description", "Timeout": "timeout",
                 "MemorySize": "memory_size", "Runtime": "runtime"}
        changes = {field: members[member] for member, field in names.items() if members.get(member) is not None}
        if members.get("Environment") is not None:
            changes["environment"] = members["Environment"].get("Variables") or {}
        if members.get("EphemeralStorage") is not None:
            changes["ephemeral_storage"] = members["EphemeralStorage"]["Size"]
        version = services.function_update_configuration(account=context.account, function_name=FunctionName,
                                                         revision_id=RevisionId, **changes)
        return version_configuration(version, region=context.region)

    def delete_function(self, context, *, FunctionName, Qualifier=None):
        services.function_delete(account=context.account, function_name=FunctionName,
                                 qualifier=Qualifier or services._qualifier_in_name(FunctionName))
        return {"StatusCode": 204}

    def get_account_settings(self, context):
        limit = settings.SANDCLOUD_FUNCTIONS["CONCURRENCY_PER_LEARNER"]
        functions = functions_for(account=context.account)
        from .selectors import code_bytes_for

        return {"AccountLimit": {"TotalCodeSize": settings.SANDCLOUD_FUNCTIONS["CODE_MB_PER_LEARNER"] * 2**20,
                                 "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
                                 "ConcurrentExecutions": limit,
                                 "UnreservedConcurrentExecutions": limit - sum(
                                     f.reserved_concurrency or 0 for f in functions)},
                "AccountUsage": {"TotalCodeSize": code_bytes_for(account=context.account),
                                 "FunctionCount": functions.count()}}

    # --- invoke ----------------------------------------------------------------------------------------------------
    def invoke(self, context, *, FunctionName, InvocationType="RequestResponse", LogType="None", ClientContext=None,
               Payload=b"", Qualifier=None, **_):
        outcome = services.function_invoke(
            account=context.account, function_name=FunctionName, qualifier=Qualifier, payload=Payload or b"",
            invocation_type=InvocationType or "RequestResponse", log_type=LogType or "None",
            client_context=ClientContext or "", request_id=context.request_id)
        out = {"StatusCode": outcome.status_code, "ExecutedVersion": outcome.executed_version}
        if outcome.status_code == 200:
            out["Payload"] = outcome.payload
        if outcome.function_error:
            out["FunctionError"] = outcome.function_error
        if outcome.log_result:
            out["LogResult"] = outcome.log_result
        return out

    def invoke_async(self, context, *, FunctionName, InvokeArgs=b""):
        if len(InvokeArgs or b"") > 256 * 1024:
            raise AwsError("RequestTooLargeException", "Request must be smaller than 262144 bytes for the "
                                                       "InvokeAsync operation", status=413)
        services.function_invoke(account=context.account, function_name=FunctionName, payload=InvokeArgs or b"",
                                 invocation_type="Event", request_id=context.request_id)
        return {"Status": 202}

    # --- versions and aliases ------------------------------------------------------------------------------------------
    def publish_version(self, context, *, FunctionName, CodeSha256=None, Description=None, RevisionId=None, **_):
        version = services.version_publish(account=context.account, function_name=FunctionName,
                                           description=Description, code_sha256=CodeSha256, revision_id=RevisionId)
        return version_configuration(version, region=context.region)

    def list_versions_by_function(self, context, *, FunctionName, Marker=None, MaxItems=None):
        function = function_get(account=context.account, name=FunctionName)
        versions = sorted(function.versions.all(), key=lambda v: -1 if v.version == LATEST else int(v.version))
        for version in versions:
            version.function = function
        page = pagination.paginate(versions, token=Marker, limit=pagination.page_size(MaxItems, default=50),
                                   scope=f"lambda:ListVersions:{function.pk}",
                                   key=lambda v: -1 if v.version == LATEST else int(v.version))
        out = {"Versions": [version_configuration(v, region=context.region) for v in page.items]}
        if page.next_token:
            out["NextMarker"] = page.next_token
        return out

    def create_alias(self, context, *, FunctionName, Name, FunctionVersion, Description="", RoutingConfig=None):
        alias = services.alias_create(account=context.account, function_name=FunctionName, name=Name,
                                      function_version=FunctionVersion, description=Description or "",
                                      weights=(RoutingConfig or {}).get("AdditionalVersionWeights") or {})
        return alias_configuration(alias, region=context.region)

    def update_alias(self, context, *, FunctionName, Name, FunctionVersion=None, Description=None,
                     RoutingConfig=None, RevisionId=None):
        weights = None if RoutingConfig is None else (RoutingConfig.get("AdditionalVersionWeights") or {})
        alias = services.alias_update(account=context.account, function_name=FunctionName, name=Name,
                                      function_version=FunctionVersion, description=Description, weights=weights,
                                      revision_id=RevisionId)
        return alias_configuration(alias, region=context.region)

    def get_alias(self, context, *, FunctionName, Name):
        alias = services.alias_get(account=context.account, function_name=FunctionName, name=Name)
        return alias_configuration(alias, region=context.region)

    def delete_alias(self, context, *, FunctionName, Name):
        services.alias_delete(account=context.account, function_name=FunctionName, name=Name)
        return {}

    def list_aliases(self, context, *, FunctionName, FunctionVersion=None, Marker=None, MaxItems=None):
        function = function_get(account=context.account, name=FunctionName)
        aliases = list(function.aliases.all())
        if FunctionVersion:
            aliases = [a for a in aliases if a.function_version == FunctionVersion]
        page = pagination.paginate(aliases, token=Marker, limit=pagination.page_size(MaxItems, default=50),
                                   scope=f"lambda:ListAliases:{function.pk}", key=lambda a: a.name)
        out = {"Aliases": [alias_configuration(a, region=context.region) for a in page.items]}
        if page.next_token:
            out["NextMarker"] = page.next_token
        return out

    # --- concurrency ---------------------------------------------------------------------------------------------------
    def put_function_concurrency(self, context, *, FunctionName, ReservedConcurrentExecutions):
        function = services.concurrency_put(account=context.account, function_name=FunctionName,
                                            reserved=ReservedConcurrentExecutions)
        return {"ReservedConcurrentExecutions": function.reserved_concurrency}

    def get_function_concurrency(self, context, *, FunctionName):
        function = function_get(account=context.account, name=FunctionName)
        return ({} if function.reserved_concurrency is None
                else {"ReservedConcurrentExecutions": function.reserved_concurrency})

    def delete_function_concurrency(self, context, *, FunctionName):
        services.concurrency_delete(account=context.account, function_name=FunctionName)
        return {}

    def put_provisioned_concurrency_config(self, context, *, FunctionName, Qualifier, ProvisionedConcurrentExecutions):
        config = services.provisioned_put(account=context.account, function_name=FunctionName, qualifier=Qualifier,
                                          count=ProvisionedConcurrentExecutions)
        return services.provisioned_status(config=config)

    def get_provisioned_concurrency_config(self, context, *, FunctionName, Qualifier):
        function = function_get(account=context.account, name=FunctionName)
        config = function.provisioned.filter(qualifier=Qualifier).first()
        if config is None:
            raise AwsError("ProvisionedConcurrencyConfigNotFoundException",
                           f"No Provisioned Concurrency Config found for this function: "
                           f"{function_arn(account=context.account, name=function.name, qualifier=Qualifier)}",
                           status=404)
        return services.provisioned_status(config=config)

    def delete_provisioned_concurrency_config(self, context, *, FunctionName, Qualifier):
        function = function_get(account=context.account, name=FunctionName)
        function.provisioned.filter(qualifier=Qualifier).delete()
        for version in function.versions.exclude(version=LATEST):
            services._provisioned_fill_later(version.pk)
        return {}

