"""Benchmarks: `manage.py bench sandbox` (start-to-prompt, echo, log latency), `bench herd` (a class starting a lab at
once), `bench density`, `bench dashboard` and one per service."""
import json

from django.core.management.base import BaseCommand, CommandError

from cohorts.benchmarks import bench_dashboard
from sandbox.benchmarks import BenchError
from sandbox.benchmarks.density import bench_density
from sandbox.benchmarks.sandbox import bench_sandbox
from sandbox.dockerproxy.benchmarks import bench_docker
from sandbox.engine.docker import EngineError
from sandbox.files.benchmarks import bench_files
from sandbox.functions.benchmarks import bench_functions
from sandbox.pools.benchmarks import bench_herd
from sandbox.registry.benchmarks import bench_registry


class Command(BaseCommand):
    help = ("Measure sandboxes end to end through the real web server, Celery worker and Docker Engine, and the "
            "instructor dashboard's reads.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sandbox = sub.add_parser("sandbox", help="warm and cold start to prompt, keystroke echo, log latency")
        sandbox.add_argument("--runs", type=int, default=20, help="measured starts of each kind (cold, warm)")
        sandbox.add_argument("--warmup", type=int, default=1, help="unmeasured starts of each kind first")
        sandbox.add_argument("--echo-samples", type=int, default=5, help="keystrokes timed per sandbox")
        sandbox.add_argument("--log-samples", type=int, default=2, help="log lines timed per sandbox")
        sandbox.add_argument("--pool-size", type=int, default=2, help="warm pool size during the warm runs")
        sandbox.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

        herd = sub.add_parser("herd", help="a cohort presses Start on a lab at once, without and with a class session")
        herd.add_argument("--learners", type=int, default=30)
        herd.add_argument("--lab", default="resource-limits", help="slug of a lab in labs/content")
        herd.add_argument("--lead-seconds", type=float, default=60,
                          help="how far ahead the class session is scheduled (its lead time, shortened for the bench)")
        herd.add_argument("--web-processes", type=int, default=None,
                          help="daphne processes of the web server (default as make run: SANDCLOUD_WEB_PROCESSES, "
                               "else one per core)")
        herd.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

        density = sub.add_parser("density", help="start N idle sandboxes and report host memory per sandbox")
        density.add_argument("--count", type=int, required=True)
        density.add_argument("--learners", type=int, default=0,
                             help="bench learners to spread the sandboxes over (default: one per 50 sandboxes, since "
                                  "each learner's network is a /26 of 62 addresses)")
        density.add_argument("--concurrency", type=int, default=4, help="sandboxes started at once")
        density.add_argument("--settle", type=float, default=10, help="seconds to let them go idle before measuring")
        density.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

        # Each app keeps its own benchmark (the dashboard's is cohorts/benchmarks.py); this command only dispatches.
        dashboard = sub.add_parser("dashboard", help="queries and time of one read of a cohort's progress matrix")
        dashboard.add_argument("--learners", type=int, default=200)
        dashboard.add_argument("--labs", type=int, default=3)
        dashboard.add_argument("--steps", type=int, default=3, help="steps per lab")
        dashboard.add_argument("--reads", type=int, default=10, help="timed reads of each kind")
        dashboard.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

        functions = sub.add_parser("functions", help="Lambda invoke latency (warm, frozen, cold), overhead, throughput")
        functions.add_argument("--runs", type=int, default=50, help="measured invocations of each kind")
        functions.add_argument("--seconds", type=float, default=20, help="length of the throughput run")
        functions.add_argument("--clients", type=int, default=10, help="concurrent clients in the throughput run")
        functions.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

        docker = sub.add_parser("docker", help="the learner's docker CLI through the proxy vs straight at the engine")
        docker.add_argument("--runs", type=int, default=20, help="docker run --rm and docker ps, each way")
        docker.add_argument("--builds", type=int, default=5, help="small builds without cache, each way")
        docker.add_argument("--registry-runs", type=int, default=3, help="pushes and pulls (0: skip the registry)")
        docker.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

        files = sub.add_parser("files", help="the editor: list a folder, open and save a file, in a running sandbox")
        files.add_argument("--runs", type=int, default=30, help="timed runs of each operation")
        files.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

        registry = sub.add_parser("registry", help="ECR push/pull MB/s through the front vs a bare docker-registry")
        registry.add_argument("--runs", type=int, default=3, help="pushes and pulls of the image to each registry")
        registry.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    def handle(self, *args, action, **options):
        progress = (lambda line: self.stderr.write(line)) if options["verbosity"] >= 1 else (lambda line: None)
        try:
            if action == "sandbox":
                result = bench_sandbox(runs=options["runs"], warmup=options["warmup"],
                                       echo_samples=options["echo_samples"], log_samples=options["log_samples"],
                                       pool_size=options["pool_size"], progress=progress)
            elif action == "herd":
                result = bench_herd(learners=options["learners"], lab=options["lab"],
                                    lead_seconds=options["lead_seconds"], web_processes=options["web_processes"],
                                    progress=progress)
            elif action == "functions":
                result = bench_functions(runs=options["runs"], rps_seconds=options["seconds"],
                                         clients=options["clients"], progress=progress)
            elif action == "docker":
                result = bench_docker(runs=options["runs"], builds=options["builds"],
                                      registry_runs=options["registry_runs"], progress=progress)
            elif action == "files":
                result = bench_files(runs=options["runs"], progress=progress)
            elif action == "registry":
                result = bench_registry(runs=options["runs"], progress=progress)
            elif action == "dashboard":
                result = bench_dashboard(learners=options["learners"], labs=options["labs"], steps=options["steps"],
                                         reads=options["reads"], progress=progress)
            else:
                learners = options["learners"] or max(1, -(-options["count"] // 50))
                result = bench_density(count=options["count"], learners=learners,
                                       concurrency=options["concurrency"], settle_seconds=options["settle"],
                                       progress=progress)
        except (BenchError, EngineError) as error:
            raise CommandError(str(error)) from error
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(render_table(result))


def render_table(result: dict) -> str:
    lines = []
    for name, value in result.items():
        if name in ("targets", "machine"):
            continue
        if isinstance(value, dict) and all(not isinstance(v, dict) for v in value.values()):
            value = "  ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, dict):
            lines.append(f"{name}")
            for sub, inner in value.items():
                lines.append(f"  {sub:<26} " + "  ".join(f"{k} {v}" for k, v in inner.items()))
            continue
        lines.append(f"{name:<30} {value}")
    if result.get("targets"):
        lines.append("targets")
        for name, verdict in result["targets"].items():
            bound = "≥" if verdict["stat"] in ("x",) or name.endswith("_rps") else "≤"
            lines.append(f"  {name:<28} {verdict['stat']} {verdict['measured']} vs {bound} {verdict['target']}  "
                         f"{'met' if verdict['met'] else 'MISSED'}")
    lines.append("machine  " + ", ".join(f"{k} {v}" for k, v in result.get("machine", {}).items()))
    return "\n".join(lines)
