"""The Docker proxy's policy: routes, the create check, object scope, builds. Pure: no engine, database or Redis."""
from __future__ import annotations

import copy
import gzip
import io
import json
import tarfile

import pytest

from sandbox.dockerproxy.policy import (
    DockerQuota,
    LearnerScope,
    ProxyRefusal,
    auth_check,
    build_context_check,
    build_query_check,
    container_create_check,
    container_update_check,
    images_visible,
    object_check,
    route_classify,
    volume_create_check,
)
from sandbox.policy import Limits

MB = 1024 * 1024
ADA_WEB = "a" * 64
ADA_DB = "ab" + "c" * 62
GRACE_WEB = "b" * 64
SHARED = frozenset({"sandcloud/python:3.11"})
REGISTRY = "127.0.0.1:5000/learner-7"


def ada(**overrides) -> LearnerScope:
    values = dict(owner="7", instance="test", uid=70007, gid=70007, network="sandcloud-test-learner-7",
                  quota=DockerQuota(containers_left=3, memory_mb_left=512, cpus=1.0, pids=256), limits=Limits(),
                  containers={ADA_WEB: "web", ADA_DB: "db"}, volumes=frozenset({"ada-data"}),
                  images=frozenset({"hello:1", f"{REGISTRY}/hello:1"}), shared_images=SHARED,
                  registries=(REGISTRY,), cgroup_parent="/sandcloud")
    values.update(overrides)
    return LearnerScope(**values)


def create_body(**host) -> dict:
    return {"Image": "hello:1", "Cmd": ["python3", "/app/app.py"], "HostConfig": host}


def refusal(call) -> ProxyRefusal:
    with pytest.raises(ProxyRefusal) as caught:
        call()
    return caught.value


def scope_check(route, learner=None):
    learner = learner or ada()
    return object_check(route, learner=learner, owned_containers=learner.containers, owned_images=learner.images,
                        shared_images=learner.shared_images, owned_volumes=learner.volumes, owned_execs={"e" * 64})


def tar_of(*members: tuple[str, str, str | bytes]) -> bytes:
    """A build context from (kind, name, content or link target) triples."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload.encode() if isinstance(payload, str) else payload
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
                continue
            info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE,
                         "chardev": tarfile.CHRTYPE}[kind]
            info.linkname = payload
            archive.addfile(info)
    return out.getvalue()


# --- routes ----------------------------------------------------------------------------------------------------------

def test_a_versioned_container_path_is_classified_with_its_id():
    route = route_classify("GET", "/v1.41/containers/web/logs?follow=1&stdout=1")

    assert (route.kind, route.object_id, route.version, route.param("follow")) == ("container.logs", "web", "1.41", "1")


def test_an_unversioned_path_is_classified():
    assert route_classify("HEAD", "/_ping").kind == "system.ping"


def test_an_image_reference_with_registry_and_slashes_is_one_id():
    route = route_classify("POST", f"/v1.41/images/{REGISTRY}/hello:1/push")

    assert (route.kind, route.object_id) == ("image.push", f"{REGISTRY}/hello:1")


def test_an_api_version_newer_than_the_engine_is_refused_in_dockers_words():
    error = refusal(lambda: route_classify("GET", "/v1.43/containers/json"))

    assert "Maximum supported API version is 1.41" in error.message


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1.41/swarm"), ("GET", "/v1.41/plugins"), ("POST", "/v1.41/commit"), ("POST", "/v1.41/session"),
    ("POST", "/v1.41/images/load"), ("GET", "/v1.41/system/df"), ("GET", "/v1.41/containers/web/secret"),
    ("PATCH", "/v1.41/containers/web/json"), ("GET", "/v1.41/secrets"),
], ids=lambda v: v)
def test_an_endpoint_the_proxy_does_not_know_is_refused(method, path):
    error = refusal(lambda: route_classify(method, path))

    assert error.status == 404 and "does not know the endpoint" in error.message


@pytest.mark.parametrize("path", [
    "/v1.41/containers/../images/json", "/v1.41/containers/%2e%2e/json", "/v1.41/containers/%2E%2E/json",
    "/v1.41/containers/web%00/json", "/v1.41/containers/a%2Fb/json", "/v1.41/containers/%252e%252e/json",
    "/v1.41/containers/a..b/json", "/v1.41/containers/a\\b/json", "/v1.41/images/../../etc/passwd/json",
    "/v1.41/volumes/.hidden", "/v1.41/containers/web%ff/json", "/v1.41/containers/we b/json",
], ids=lambda v: v)
def test_traversal_or_encoding_tricks_in_an_id_are_refused(path):
    error = refusal(lambda: route_classify("GET", path))

    assert error.status in (400, 404)


def test_a_resolved_route_forwards_the_rebuilt_path_not_the_raw_one():
    route = route_classify("GET", "/v1.41/containers/web/json/")

    assert scope_check(route).forward_path() == f"/v1.41/containers/{ADA_WEB}/json"


# --- container create: accepted and rewritten ------------------------------------------------------------------------

def test_an_accepted_create_carries_the_learners_labels():
    body = container_create_check({**create_body(), "Labels": {"app": "hello"}}, learner=ada())

    assert body["Labels"] == {"app": "hello", "sandcloud.instance": "test", "sandcloud.owner": "7",
                              "sandcloud.kind": "learner-container", "sandcloud.uid": "70007"}


def test_an_accepted_create_joins_only_the_learners_network():
    body = container_create_check({**create_body(NetworkMode="default"),
                                   "NetworkingConfig": {"EndpointsConfig": {"sandcloud-test-learner-7": {
                                       "Aliases": ["api"]}}}}, learner=ada())

    assert body["HostConfig"]["NetworkMode"] == "sandcloud-test-learner-7"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"sandcloud-test-learner-7": {"Aliases": ["api"]}}}


def test_an_accepted_create_gets_the_platforms_hardening():
    body = container_create_check(create_body(), learner=ada())
    host = body["HostConfig"]

    assert body["User"] == "70007:70007"
    assert (host["CapDrop"], host["SecurityOpt"], host["ReadonlyRootfs"], host["Privileged"]) == (
        ["ALL"], ["no-new-privileges:true"], True, False)
    assert (host["OomScoreAdj"], host["CgroupParent"], host["Runtime"]) == (1000, "/sandcloud", "runc")
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
    assert "/tmp" in host["Tmpfs"] and host["Dns"] == ["127.0.0.1"]


def test_an_accepted_create_without_limits_gets_the_default_limits():
    host = container_create_check(create_body(), learner=ada())["HostConfig"]

    assert (host["Memory"], host["MemorySwap"], host["NanoCpus"], host["PidsLimit"]) == (
        256 * MB, 256 * MB, 500_000_000, 256)


def test_the_default_memory_shrinks_to_the_quota_left():
    host = container_create_check(create_body(), learner=ada(quota=DockerQuota(3, 100)))["HostConfig"]

    assert host["Memory"] == 100 * MB


def test_limits_asked_for_within_the_quota_are_kept():
    host = container_create_check(create_body(Memory=512 * MB, NanoCpus=1_000_000_000, PidsLimit=64),
                                  learner=ada())["HostConfig"]

    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (512 * MB, 1_000_000_000, 64)


def test_the_zero_values_the_cli_sends_for_unused_options_are_accepted():
    cli_host = {"Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "default",
                "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": True,
                "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None, "CgroupnsMode": "",
                "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "",
                "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
                "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "",
                "UsernsMode": "", "ShmSize": 0, "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0,
                "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
                "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None,
                "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
                "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None,
                "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0, "MemoryReservation": 0,
                "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None,
                "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
                "MaskedPaths": None, "ReadonlyPaths": None, "Init": None}
    body = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": True,
            "AttachStderr": True, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": [],
            "Cmd": ["true"], "Image": "sandcloud/python:3.11", "Volumes": {}, "WorkingDir": "", "Entrypoint": None,
            "OnBuild": None, "Labels": {}, "HostConfig": cli_host,
            "NetworkingConfig": {"EndpointsConfig": {}}}

    assert container_create_check(body, learner=ada())["HostConfig"]["AutoRemove"] is True


def test_network_none_is_allowed():
    body = container_create_check(create_body(NetworkMode="none"), learner=ada())

    assert body["HostConfig"]["NetworkMode"] == "none" and "NetworkingConfig" not in body


def test_a_runsc_container_runs_without_a_network():
    host = container_create_check(create_body(Runtime="runsc"), learner=ada())["HostConfig"]

    assert (host["Runtime"], host["NetworkMode"]) == ("runsc", "none")


def test_volumes_from_the_learners_own_container_is_forwarded_as_its_full_id():
    host = container_create_check(create_body(VolumesFrom=["web:ro"]), learner=ada())["HostConfig"]

    assert host["VolumesFrom"] == [f"{ADA_WEB}:ro"]


def test_the_learners_own_named_volume_is_mounted():
    host = container_create_check(create_body(Binds=["ada-data:/data"]), learner=ada())["HostConfig"]

    assert host["Binds"] == ["ada-data:/data"]


def test_an_anonymous_volume_becomes_a_sized_tmpfs_instead_of_host_disk():
    body = container_create_check({**create_body(), "Volumes": {"/data": {}}}, learner=ada())

    assert "Volumes" not in body and "size=32m" in body["HostConfig"]["Tmpfs"]["/data"]


def test_the_create_check_leaves_the_request_body_unchanged():
    body = create_body(PidMode="container:web", IpcMode="container:db")
    original = copy.deepcopy(body)

    container_create_check(body, learner=ada())

    assert body == original


# --- container create: refused, one per option ----------------------------------------------------------------------

REFUSED_HOST_OPTIONS = [
    ("privileged", {"Privileged": True}, "--privileged"),
    ("network-host", {"NetworkMode": "host"}, "--network host"),
    ("network-bridge", {"NetworkMode": "bridge"}, "--network bridge"),
    ("network-other-learners-container", {"NetworkMode": f"container:{GRACE_WEB}"}, "--network container:"),
    ("pid-host", {"PidMode": "host"}, "--pid host"),
    ("pid-other-learners-container", {"PidMode": "container:grace-web"}, "--pid container:grace-web"),
    ("ipc-host", {"IpcMode": "host"}, "--ipc host"),
    ("ipc-other-learners-container", {"IpcMode": "container:grace-web"}, "--ipc container:grace-web"),
    ("uts-host", {"UTSMode": "host"}, "--uts host"),
    ("userns-host", {"UsernsMode": "host"}, "--userns host"),
    ("cgroupns-host", {"CgroupnsMode": "host"}, "--cgroupns host"),
    ("cgroup", {"Cgroup": "host"}, "--cgroup"),
    ("bind-host-path", {"Binds": ["/etc:/host-etc:ro"]}, "-v /etc:/host-etc:ro"),
    ("bind-other-learners-volume", {"Binds": ["grace-data:/data"]}, "-v grace-data:/data"),
    ("mount-bind", {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}]}, "--mount type=bind"),
    ("mount-npipe", {"Mounts": [{"Type": "npipe", "Source": "x", "Target": "/x"}]}, "--mount type=npipe"),
    ("mount-volume-driver-opts-host-path", {"Mounts": [{"Type": "volume", "Source": "ada-data", "Target": "/d",
                                                        "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {
                                                            "type": "none", "o": "bind", "device": "/etc"}}}}]},
     "--mount type=volume"),
    ("volume-driver", {"VolumeDriver": "sshfs"}, "--volume-driver sshfs"),
    ("devices", {"Devices": [{"PathOnHost": "/dev/kvm", "PathInContainer": "/dev/kvm",
                              "CgroupPermissions": "rwm"}]}, "--device"),
    ("device-requests", {"DeviceRequests": [{"Count": -1, "Capabilities": [["gpu"]]}]}, "--gpus"),
    ("device-cgroup-rules", {"DeviceCgroupRules": ["c 1:3 rwm"]}, "--device-cgroup-rule"),
    ("cap-add", {"CapAdd": ["NET_ADMIN"]}, "--cap-add"),
    ("seccomp-unconfined", {"SecurityOpt": ["seccomp=unconfined"]}, "--security-opt seccomp=unconfined"),
    ("apparmor-unconfined", {"SecurityOpt": ["apparmor=unconfined"]}, "--security-opt apparmor=unconfined"),
    ("security-opt-label", {"SecurityOpt": ["label=disable"]}, "--security-opt label=disable"),
    ("masked-paths-unmasked", {"MaskedPaths": []}, "HostConfig.MaskedPaths"),
    ("readonly-paths-unset", {"ReadonlyPaths": []}, "HostConfig.ReadonlyPaths"),
    ("publish", {"PortBindings": {"8000/tcp": [{"HostIp": "", "HostPort": "8000"}]}}, "--publish (8000/tcp)"),
    ("publish-all", {"PublishAllPorts": True}, "--publish-all"),
    ("sysctls", {"Sysctls": {"net.ipv4.ip_forward": "1"}}, "--sysctl"),
    ("runtime", {"Runtime": "io.containerd.runc.v2"}, "--runtime io.containerd.runc.v2"),
    ("cgroup-parent", {"CgroupParent": "/"}, "--cgroup-parent"),
    ("oom-kill-disable", {"OomKillDisable": True}, "--oom-kill-disable"),
    ("oom-score-adj", {"OomScoreAdj": -500}, "--oom-score-adj -500"),
    ("volumes-from-other-learner", {"VolumesFrom": [GRACE_WEB]}, "--volumes-from"),
    ("link-other-learner", {"Links": ["grace-web:db"]}, "--link grace-web:db"),
    ("memory-above-quota", {"Memory": 1024 * MB}, "--memory 1024m"),
    ("memory-swap-unlimited", {"MemorySwap": -1}, "--memory-swap"),
    ("cpus-above-quota", {"NanoCpus": 2_000_000_000}, "--cpus 2.0"),
    ("pids-above-quota", {"PidsLimit": 100_000}, "--pids-limit 100000"),
    ("cpu-shares-above-default", {"CpuShares": 262144}, "--cpu-shares"),
    ("cpu-quota", {"CpuQuota": 400000}, "--cpu-quota"),
    ("cpu-realtime", {"CpuRealtimeRuntime": 950000}, "--cpu-rt-runtime"),
    ("kernel-memory", {"KernelMemory": 1 * MB}, "--kernel-memory"),
    ("blkio-device", {"BlkioDeviceReadBps": [{"Path": "/dev/vda", "Rate": 1}]}, "--device-read-bps"),
    ("ulimit-raised", {"Ulimits": [{"Name": "nofile", "Soft": 65536, "Hard": 65536}]}, "--ulimit nofile"),
    ("ulimit-unlimited", {"Ulimits": [{"Name": "nproc", "Soft": -1, "Hard": -1}]}, "--ulimit nproc"),
    ("ulimit-other", {"Ulimits": [{"Name": "memlock", "Soft": 1, "Hard": 1}]}, "--ulimit memlock"),
    ("group-add", {"GroupAdd": ["docker"]}, "--group-add"),
    ("storage-opt", {"StorageOpt": {"size": "100G"}}, "--storage-opt"),
    ("dns", {"Dns": ["8.8.8.8"]}, "--dns"),
    ("log-driver", {"LogConfig": {"Type": "syslog", "Config": {"syslog-address": "udp://1.2.3.4:514"}}},
     "--log-driver syslog"),
    ("shm-size-above-memory", {"ShmSize": 1024 * MB}, "--shm-size"),
    ("tmpfs-option", {"Tmpfs": {"/x": "rw,size=1m,context=system_u"}}, "--tmpfs /x"),
    ("unknown-host-option", {"Annotations": {"io.kubernetes.cri-o.Devices": "/dev/fuse"}}, "HostConfig.Annotations"),
]


@pytest.mark.parametrize("host,option", [(h, o) for _, h, o in REFUSED_HOST_OPTIONS],
                         ids=[name for name, _, _ in REFUSED_HOST_OPTIONS])
def test_a_refused_host_option_is_refused_naming_the_option(host, option):
    error = refusal(lambda: container_create_check(create_body(**host), learner=ada()))

    assert error.status == 403 and option in error.message


def test_a_platform_label_is_refused():
    error = refusal(lambda: container_create_check({**create_body(), "Labels": {"sandcloud.owner": "8"}},
                                                   learner=ada()))

    assert "--label sandcloud.owner=8" in error.message


def test_another_network_in_the_networking_config_is_refused():
    body = {**create_body(), "NetworkingConfig": {"EndpointsConfig": {"sandcloud-test-learner-8": {}}}}

    error = refusal(lambda: container_create_check(body, learner=ada()))

    assert "--network sandcloud-test-learner-8" in error.message


def test_an_unknown_top_level_option_is_refused():
    error = refusal(lambda: container_create_check({**create_body(), "Privileges": True}, learner=ada()))

    assert "Privileges" in error.message


def test_running_another_learners_image_answers_no_such_image():
    error = refusal(lambda: container_create_check({**create_body(), "Image": "grace-secret:1"}, learner=ada()))

    assert (error.status, error.message) == (404, "No such image: grace-secret:1")


def test_a_create_beyond_the_container_count_quota_is_refused():
    error = refusal(lambda: container_create_check(create_body(), learner=ada(quota=DockerQuota(0, 512))))

    assert "Remove one (docker rm)" in error.message


def test_a_create_with_no_memory_quota_left_is_refused():
    error = refusal(lambda: container_create_check(create_body(), learner=ada(quota=DockerQuota(3, 0))))

    assert "all your memory quota" in error.message


def test_a_member_of_the_wrong_type_is_refused_as_malformed():
    error = refusal(lambda: container_create_check(create_body(CpuShares="lots"), learner=ada()))

    assert error.status == 400


def test_an_update_above_the_quota_is_refused():
    error = refusal(lambda: container_update_check({"Memory": 4096 * MB}, learner=ada()))

    assert "--memory 4096m" in error.message


# --- other endpoints: the learner's own objects only -----------------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("GET", "/containers/{}/json"), ("GET", "/containers/{}/logs"), ("POST", "/containers/{}/attach"),
    ("POST", "/containers/{}/exec"), ("POST", "/containers/{}/stop"), ("POST", "/containers/{}/kill"),
    ("DELETE", "/containers/{}"), ("GET", "/containers/{}/stats"), ("GET", "/containers/{}/top"),
    ("POST", "/containers/{}/wait"), ("GET", "/containers/{}/export"), ("GET", "/containers/{}/archive?path=/"),
    ("PUT", "/containers/{}/archive?path=/tmp"), ("POST", "/containers/{}/start"), ("POST", "/containers/{}/update"),
], ids=lambda v: v)
def test_another_learners_container_is_answered_as_no_such_container(method, path):
    route = route_classify(method, "/v1.41" + path.format("grace-web"))

    error = refusal(lambda: scope_check(route))

    assert (error.status, error.message) == (404, "No such container: grace-web")


def test_a_container_name_with_a_slash_inside_is_refused():
    error = refusal(lambda: scope_check(route_classify("POST", "/v1.41/containers/create?name=web/../x")))

    assert error.message.startswith("Invalid container name")


def test_a_name_is_forwarded_as_the_learners_own_container_id():
    route = scope_check(route_classify("POST", "/v1.41/containers/db/stop"))

    assert route.forward_path() == f"/v1.41/containers/{ADA_DB}/stop"


def test_an_id_prefix_shared_by_two_of_the_learners_containers_is_not_guessed():
    error = refusal(lambda: scope_check(route_classify("POST", "/v1.41/containers/a/kill")))

    assert error.status == 404


def test_another_learners_exec_instance_is_refused():
    error = refusal(lambda: scope_check(route_classify("POST", f"/v1.41/exec/{'f' * 64}/start")))

    assert error.message == f"No such exec instance: {'f' * 64}"


@pytest.mark.parametrize("method,path", [
    ("GET", "/images/grace-secret:1/json"), ("GET", "/images/grace-secret:1/history"),
    ("POST", "/images/grace-secret:1/push"), ("POST", "/images/grace-secret:1/tag?repo=mine&tag=1"),
    ("DELETE", "/images/grace-secret:1"),
], ids=lambda v: v)
def test_another_learners_image_is_answered_as_no_such_image(method, path):
    error = refusal(lambda: scope_check(route_classify(method, "/v1.41" + path)))

    assert (error.status, error.message) == (404, "No such image: grace-secret:1")


def test_a_shared_base_image_can_be_inspected():
    route = route_classify("GET", "/v1.41/images/sandcloud/python:3.11/json")

    assert scope_check(route) == route


def test_a_shared_base_image_cannot_be_removed():
    error = refusal(lambda: scope_check(route_classify("DELETE", "/v1.41/images/sandcloud/python:3.11")))

    assert "read-only" in error.message


def test_tagging_over_a_shared_base_image_is_refused():
    route = route_classify("POST", "/v1.41/images/hello:1/tag?repo=sandcloud/python&tag=3.11")

    error = refusal(lambda: scope_check(route))

    assert "sandcloud/python:3.11 is one of Sandcloud's shared base images" in error.message


def test_pushing_outside_the_learners_registry_is_refused():
    error = refusal(lambda: scope_check(route_classify("POST", "/v1.41/images/hello:1/push")))

    assert "your private registry" in error.message


def test_a_push_as_the_cli_sends_it_names_the_tag_in_the_query():
    route = route_classify("POST", f"/v1.41/images/{REGISTRY}/hello/push?tag=1")

    assert scope_check(route) == route


def test_a_push_of_a_tag_the_learner_does_not_have_is_no_such_image():
    error = refusal(lambda: scope_check(route_classify("POST", f"/v1.41/images/{REGISTRY}/hello/push?tag=2")))

    assert error.status == 404 and f"{REGISTRY}/hello:2" in error.message


def test_a_push_of_all_tags_needs_one_of_the_repository():
    route = route_classify("POST", f"/v1.41/images/{REGISTRY}/hello/push")

    assert scope_check(route) == route
    assert refusal(lambda: scope_check(route_classify("POST", f"/v1.41/images/{REGISTRY}/other/push"))).status == 404


def test_pulling_from_docker_hub_is_refused():
    error = refusal(lambda: scope_check(route_classify("POST", "/v1.41/images/create?fromImage=alpine&tag=latest")))

    assert error.message.startswith("pull access denied for alpine")


def test_pulling_a_shared_base_image_is_allowed():
    route = route_classify("POST", "/v1.41/images/create?fromImage=sandcloud/python&tag=3.11")

    assert scope_check(route) == route


def test_another_learners_volume_is_answered_as_no_such_volume():
    error = refusal(lambda: scope_check(route_classify("DELETE", "/v1.41/volumes/grace-data")))

    assert (error.status, error.message) == (404, "get grace-data: no such volume")


def test_another_learners_network_is_not_found():
    error = refusal(lambda: scope_check(route_classify("GET", "/v1.41/networks/sandcloud-test-learner-8")))

    assert error.status == 404


def test_connecting_a_network_is_refused():
    error = refusal(lambda: scope_check(route_classify("POST", "/v1.41/networks/sandcloud-test-learner-8/connect")))

    assert "does not change networks" in error.message


def test_a_container_list_is_narrowed_to_the_learners_label_keeping_theirs():
    route = scope_check(route_classify("GET", '/v1.41/containers/json?all=1&filters={"label":["app=hello"]}'))

    assert json.loads(route.param("filters")) == {"label": ["app=hello", "sandcloud.owner=7"]}


def test_events_are_narrowed_to_the_learners_label():
    route = scope_check(route_classify("GET", "/v1.41/events"))

    assert json.loads(route.param("filters")) == {"label": ["sandcloud.owner=7"]}


def test_an_image_list_shows_the_learners_and_the_shared_images_only():
    images = [{"Id": "sha256:1", "RepoTags": ["hello:1"]}, {"Id": "sha256:2", "RepoTags": ["sandcloud/python:3.11"]},
              {"Id": "sha256:3", "RepoTags": ["grace-secret:1"]}]

    visible = images_visible(images, owned_images={"hello:1"}, shared_images=SHARED)

    assert [i["Id"] for i in visible] == ["sha256:1", "sha256:2"]


def test_docker_login_to_another_registry_is_refused():
    error = refusal(lambda: auth_check({"serveraddress": "https://index.docker.io/v1/"}, learner=ada()))

    assert "your private registry only" in error.message


def test_a_volume_with_driver_options_is_refused():
    body = {"Name": "x", "DriverOpts": {"type": "none", "o": "bind", "device": "/"}}

    error = refusal(lambda: volume_create_check(body, learner=ada()))

    assert "--opt" in error.message


# --- builds ----------------------------------------------------------------------------------------------------------

def test_a_build_runs_on_the_learners_network_within_their_limits():
    route = build_query_check(route_classify("POST", "/v1.41/build?t=hello:2"), learner=ada())

    assert (route.param("networkmode"), route.param("memory"), route.param("cgroupparent"), route.param("forcerm")) == (
        "sandcloud-test-learner-7", str(256 * MB), "/sandcloud", "1")


def test_a_build_on_the_host_network_is_refused():
    error = refusal(lambda: build_query_check(route_classify("POST", "/v1.41/build?networkmode=host"), learner=ada()))

    assert "--network host" in error.message


def test_a_build_from_a_remote_context_is_refused():
    route = route_classify("POST", "/v1.41/build?remote=https://example.com/repo.git")

    error = refusal(lambda: build_query_check(route, learner=ada()))

    assert "remote" in error.message


def test_a_build_tagged_over_a_shared_base_image_is_refused():
    route = route_classify("POST", "/v1.41/build?t=sandcloud/python:3.11")

    error = refusal(lambda: build_query_check(route, learner=ada()))

    assert "shared base images" in error.message


def test_a_build_context_with_links_inside_it_is_accepted():
    context = tar_of(("file", "Dockerfile", "FROM sandcloud/python:3.11\n"), ("dir", "app", ""),
                     ("file", "app/app.py", "print(1)\n"), ("symlink", "app/main.py", "app.py"),
                     ("symlink", "bin/run", "../app/app.py"))

    assert build_context_check(context, max_bytes=MB).members == 5


@pytest.mark.parametrize("members", [
    [("symlink", "etc", "/etc")],
    [("symlink", "secret", "../../../etc/shadow")],
    [("symlink", "here", "."), ("symlink", "up", "here/..")],
    [("symlink", "a/deep", "../.."), ("file", "Dockerfile", "")],
    [("hardlink", "passwd", "../etc/passwd")],
], ids=["absolute", "relative-escape", "through-a-linked-dir", "nested-escape", "hard-link"])
def test_a_build_context_with_a_link_leading_outside_it_is_refused(members):
    error = refusal(lambda: build_context_check(tar_of(*members), max_bytes=MB))

    assert "leads outside it" in error.message


def test_a_build_context_with_a_device_is_refused():
    error = refusal(lambda: build_context_check(tar_of(("chardev", "mem", "")), max_bytes=MB))

    assert "device" in error.message


def test_a_build_context_member_with_dot_dot_in_its_name_is_refused():
    error = refusal(lambda: build_context_check(tar_of(("file", "../escape", "x")), max_bytes=MB))

    assert "outside it" in error.message


def test_an_oversized_build_context_is_refused_without_reading_it():
    stream = io.BytesIO(tar_of(("file", "big.bin", b"\0" * (2 * MB))))

    error = refusal(lambda: build_context_check(stream, max_bytes=MB))

    assert error.status == 413 and stream.tell() == 0


def test_a_compressed_context_that_unpacks_past_the_cap_is_refused():
    bomb = gzip.compress(tar_of(("file", "zeros", b"\0" * (8 * MB))))

    error = refusal(lambda: build_context_check(bomb, max_bytes=MB))

    assert "unpacks to more than" in error.message
