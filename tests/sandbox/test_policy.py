"""Hardening and quota policy, as pure logic."""
import ipaddress

import pytest

from sandbox.policy import (LEARNER_OOM_SCORE_ADJ, ContainerSpec, Limits, PolicyError, Quota, check_capabilities,
                            hardened_create_kwargs, memory_budget_mb, quota_refusal, subnet_candidates)


def spec(**overrides) -> ContainerSpec:
    values = {"name": "c", "image": "img", "uid": 20001, "gid": 20000, "labels": {"sandcloud.instance": "t"},
              "limits": Limits(memory_mb=128, cpus=0.25, pids=64), "network": "net"}
    return ContainerSpec(**{**values, **overrides})


def test_every_container_drops_all_capabilities_and_forbids_new_privileges():
    kwargs = hardened_create_kwargs(spec())
    assert kwargs["cap_drop"] == ["ALL"]
    assert "cap_add" not in kwargs
    assert kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["privileged"] is False


def test_limits_become_memory_swap_cpu_and_pid_caps():
    kwargs = hardened_create_kwargs(spec())
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == "128m"
    assert kwargs["nano_cpus"] == 250_000_000
    assert kwargs["pids_limit"] == 64
    assert {"Name": "core", "Soft": 0, "Hard": 0} in kwargs["ulimits"]


def test_the_root_filesystem_is_read_only_and_home_is_a_capped_tmpfs_owned_by_the_learner():
    kwargs = hardened_create_kwargs(spec())
    assert kwargs["read_only"] is True
    assert "size=64m" in kwargs["tmpfs"]["/home/learner"]
    assert "uid=20001" in kwargs["tmpfs"]["/home/learner"]
    assert kwargs["user"] == "20001:20000"


def test_no_host_mounts_or_docker_socket_are_ever_requested():
    kwargs = hardened_create_kwargs(spec())
    assert "volumes" not in kwargs and "mounts" not in kwargs


def test_gvisor_sandboxes_have_no_network():
    kwargs = hardened_create_kwargs(spec(runtime="runsc"))
    assert kwargs["runtime"] == "runsc"
    assert kwargs["network_mode"] == "none"
    assert "network" not in kwargs


def test_every_capability_is_refused_in_plain_words_even_the_once_allowed_ones():
    # A learner process runs as an ordinary uid under no-new-privileges: an added capability could never take effect.
    for capabilities in (["NET_BIND_SERVICE"], ["cap_net_raw", "kill"], ["SYS_ADMIN"]):
        with pytest.raises(PolicyError, match="cannot be given capabilities"):
            check_capabilities(capabilities)
    assert check_capabilities([]) == ()


def test_learner_containers_are_the_oom_killers_first_choice_and_carry_their_uid():
    kwargs = hardened_create_kwargs(spec())
    assert kwargs["oom_score_adj"] == LEARNER_OOM_SCORE_ADJ == 1000
    assert kwargs["labels"] == {"sandcloud.instance": "t", "sandcloud.uid": "20001"}


QUOTA = Quota(per_learner=2, per_host=10, memory_budget_mb=1024)


def test_quota_refuses_a_learner_at_their_limit():
    message = quota_refusal(quota=QUOTA, learner_active=2, host_active=3, memory_committed_mb=0,
                            memory_requested_mb=256)
    assert "Stop one before starting another" in message


def test_quota_refuses_when_the_host_is_full():
    message = quota_refusal(quota=QUOTA, learner_active=0, host_active=10, memory_committed_mb=0,
                            memory_requested_mb=256)
    assert "capacity" in message


def test_quota_refuses_a_sandbox_whose_memory_would_pass_the_budget():
    message = quota_refusal(quota=QUOTA, learner_active=0, host_active=3, memory_committed_mb=800,
                            memory_requested_mb=256)
    assert message == ("Sandcloud does not have enough memory free for another sandbox right now. "
                       "Please try again in a few minutes.")


def test_quota_allows_a_sandbox_that_fits():
    assert quota_refusal(quota=QUOTA, learner_active=1, host_active=9, memory_committed_mb=768,
                         memory_requested_mb=256) is None


def test_the_memory_budget_is_the_parent_limit_times_the_overcommit_factor():
    assert memory_budget_mb(parent_memory_mb=18_000, overcommit=4.0) == 72_000
    assert memory_budget_mb(parent_memory_mb=1000, overcommit=0.512) == 512


def test_learner_subnets_come_from_the_project_range_stable_per_name():
    first = subnet_candidates(pool="10.224.0.0/12", prefix=26, name="sandcloud-x-learner-7", count=3)
    assert first == subnet_candidates(pool="10.224.0.0/12", prefix=26, name="sandcloud-x-learner-7", count=3)
    assert all(ipaddress.ip_network(s).subnet_of(ipaddress.ip_network("10.224.0.0/12")) for s in first)
    assert all(ipaddress.ip_network(s).prefixlen == 26 for s in first)
    assert len(set(first)) == 3
    assert first[0] != subnet_candidates(pool="10.224.0.0/12", prefix=26, name="sandcloud-x-learner-8", count=1)[0]
