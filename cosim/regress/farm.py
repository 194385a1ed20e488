"""``iogate farm``: a regression campaign spread over Dask workers.

A campaign is seeds x Configs x simulators x sizes (:class:`Campaign`), from the command line
or a small TOML file (:func:`load_campaign`). Each run is one ``iogate regress`` seed
(:func:`run_seed`: the simulator runs as a child process of the worker, through cocotb's
runner, so every run has its own cocotb and coverage database). Runs go to
``dask.distributed``: a :class:`~dask.distributed.LocalCluster` by default (one
single-threaded worker process per core), a running scheduler (``--scheduler
tcp://HOST:PORT``) or a batch system through ``dask-jobqueue`` (``--cluster slurm|pbs|lsf``).
Simulator models are shared through the build cache of :mod:`iogate.cosim.targets.sim`
(keyed by the generated Verilog, built once under a file lock, so two workers asking for
the same model wait for one build).

Resume: the campaign folder (``build/farm/<name>/``) keeps ``results.jsonl``, one finished
run a line; a rerun skips those (a run that ended in an error is tried again). Failures:
a run that raises, or whose worker dies, is submitted once more and, if it fails again,
reported as an error with the reason; nothing finished is lost. The report is
:mod:`iogate.cosim.regress.campaign`'s.
"""

import json
import os
import pathlib
import socket
import sys
import time
import tomllib
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field

__all__ = ["Campaign", "Task", "CampaignError", "FarmError", "parse_seeds", "load_campaign",
           "run_seed", "run_campaign", "open_client", "jobqueue_kwargs", "make_jobqueue_cluster",
           "CLUSTERS"]

#: ``--cluster`` names and their dask-jobqueue classes.
CLUSTERS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "lsf": "LSFCluster"}
#: What a campaign file may say (anything else is refused, naming these).
CAMPAIGN_KEYS = ("name", "seeds", "sims", "translations", "configs", "mutant", "out")
DISPATCH_KEYS = ("scheduler", "cluster", "cluster_options", "workers", "timeout")
#: Tries of one run: the first and one more (spec of issue 18, "Bad input").
ATTEMPTS = 2


#: The scheduler settings of a farm (a LocalCluster's; give an external ``dask scheduler``
#: the same through DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0 and
#: DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0). A worker that dies mid-run fails
#: its task at once (the farm resubmits it itself, once, for every kind of scheduler), and
#: a worker holds only the run it is doing (the default 1.1 queues a second run on a
#: single-threaded worker, which a crash of the first would take down with it).
SCHEDULER_CONFIG = {"distributed.scheduler.allowed-failures": 0,
                    "distributed.scheduler.worker-saturation": 1.0}


class CampaignError(ValueError):
    """A campaign that cannot be run as written (the message says what to change)."""


class FarmError(RuntimeError):
    """The Dask side cannot be had (no scheduler, no workers)."""


@dataclass(frozen=True, order=True)
class Task:
    """One run of a campaign: a seed on a simulator, of a size, on a Config (None: the
    seed's own choice, :func:`iogate.cosim.regress.world.choose_config`)."""
    seed: int
    sim: str
    translations: int
    config: str | None = None

    @property
    def key(self):
        return f"{self.sim}-seed{self.seed}-t{self.translations}-{self.config or 'auto'}"


def parse_seeds(spec):
    """Seeds from ``"1-20,25,30-32"``, an int or a list of ints/ranges; sorted, unique.

    Raises
    ------
    CampaignError
        If the spec is malformed or names no seed (``"5-1"``, ``""``, ``[]``).
    """
    parts = spec if isinstance(spec, list) else [spec]
    seeds = set()
    for part in parts:
        if isinstance(part, bool):
            raise CampaignError(f"seeds: {part!r} is not a seed")
        if isinstance(part, int):
            seeds.add(part)
            continue
        for item in str(part).split(","):
            item = item.strip()
            if not item:
                continue
            lo, sep, hi = item.partition("-")
            try:
                lo_i, hi_i = int(lo), int(hi) if sep else int(lo)
            except ValueError:
                raise CampaignError(f"seeds: {item!r} is neither a seed nor a range "
                                    f"such as 1-20") from None
            if hi_i < lo_i:
                raise CampaignError(f"seeds: the range {item!r} is empty (write it low-high)")
            seeds.update(range(lo_i, hi_i + 1))
    if not seeds:
        raise CampaignError(f"seeds: {spec!r} names no seed")
    return sorted(seeds)


def _listed(value, what):
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    elif not isinstance(value, list):
        value = [value]
    if not value:
        raise CampaignError(f"{what}: the list is empty")
    return value


@dataclass
class Campaign:
    """Seeds x Configs x simulators x sizes, and where the results go."""
    seeds: list
    sims: list = field(default_factory=lambda: ["verilator"])
    translations: list = field(default_factory=lambda: [2000])
    configs: list | None = None
    name: str = "campaign"
    mutant: str | None = None
    out: str | None = None

    def __post_init__(self):
        from iogate.cosim.regress.mutants import MUTANTS
        from iogate.cosim.regress.world import CONFIGS
        from iogate.cosim.targets.sim import SIMULATORS
        self.seeds = parse_seeds(self.seeds)
        self.sims = _listed(self.sims, "sims")
        bad = [s for s in self.sims if s not in SIMULATORS]
        if bad:
            raise CampaignError(f"sims: {bad} unknown; the simulators are {list(SIMULATORS)}")
        sizes = _listed(self.translations, "translations")
        try:
            self.translations = [int(t) for t in sizes]
        except (TypeError, ValueError):
            raise CampaignError(f"translations: {sizes!r} are not whole numbers") from None
        if any(t <= 0 for t in self.translations):
            raise CampaignError(f"translations: {self.translations} must be positive")
        if self.configs is not None:
            self.configs = _listed(self.configs, "configs")
            bad = [c for c in self.configs if c not in CONFIGS]
            if bad:
                raise CampaignError(f"configs: {bad} unknown; the Configs are {sorted(CONFIGS)}")
        if self.mutant is not None and self.mutant not in MUTANTS:
            raise CampaignError(f"mutant: {self.mutant!r} unknown; the mutants are "
                                f"{sorted(MUTANTS)}")
        if not str(self.name) or "/" in str(self.name):
            raise CampaignError(f"name: {self.name!r} is not a folder name")

    @property
    def folder(self):
        return pathlib.Path(self.out or pathlib.Path("build") / "farm" / self.name)

    def tasks(self):
        """Every run, seeds first (so a partial campaign has whole seeds)."""
        configs = self.configs or [None]
        return [Task(seed, sim, t, c) for seed in self.seeds for c in configs
                for t in self.translations for sim in self.sims]


def load_campaign(path):
    """``(Campaign, dispatch options)`` from a TOML file.

    Top-level keys: :data:`CAMPAIGN_KEYS` (seeds as ``"1-20"`` or a list, sims and configs
    as lists, translations an int or a list) and :data:`DISPATCH_KEYS` (``cluster_options``
    a table). Raises :class:`CampaignError` for unreadable TOML and unknown keys.
    """
    path = pathlib.Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise CampaignError(f"{path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise CampaignError(f"{path}: not TOML ({e})") from None
    unknown = sorted(set(data) - set(CAMPAIGN_KEYS) - set(DISPATCH_KEYS))
    if unknown:
        raise CampaignError(f"{path}: unknown keys {unknown}; a campaign file may set "
                            f"{list(CAMPAIGN_KEYS + DISPATCH_KEYS)}")
    if "seeds" not in data:
        raise CampaignError(f"{path}: no seeds (e.g. seeds = \"1-20\")")
    dispatch = {k: data.pop(k) for k in DISPATCH_KEYS if k in data}
    if not isinstance(dispatch.get("cluster_options", {}), dict):
        raise CampaignError(f"{path}: cluster_options must be a table")
    data.setdefault("name", path.stem)
    return Campaign(**data), dispatch


# -- one run, on a worker ---------------------------------------------------------------------

#: The builds this worker process has found, by (Config name, simulator, mutant, RTL).
_BUILDS: dict = {}


def _hdl_version():
    from iogate.cosim.targets.sim import ROOT
    return max((f.stat().st_mtime_ns for f in (ROOT / "hdl").rglob("*.py")), default=0)


def run_seed(task, folder, mutant=None):
    """Run ``task`` with :func:`iogate.cosim.regress.run.regress`; its result as a dict.

    The run's console output goes to ``runs/<key>.log``; its report, log and coverage
    database stay in ``runs/t<size>-<config>/<sim>-seed<seed>/``. Raises RuntimeError when
    the simulator ended without a report (a crash: retried by the farm).
    """
    from iogate.cosim.regress.run import model_build, regress, replay_command
    from iogate.cosim.regress.world import CONFIGS, choose_config
    config_name = task.config or choose_config(task.seed)[0]
    # Elaborating the design to find its build takes seconds: once per worker and version
    # of the RTL (a long-lived `dask worker` may outlive an edit of hdl/).
    key = (config_name, task.sim, mutant, _hdl_version())
    if key not in _BUILDS:
        _BUILDS[key] = model_build(CONFIGS[config_name], task.sim, mutant=mutant)
    runs = pathlib.Path(folder) / "runs"
    work = runs / f"t{task.translations}-{task.config or 'auto'}"
    work.mkdir(parents=True, exist_ok=True)
    with open(runs / f"{task.key}.log", "w") as log, redirect_stdout(log), redirect_stderr(log):
        regress(task.seed, task.translations, task.sim, out=work, config=task.config,
                mutant=mutant, build=_BUILDS[key])
    run_dir = work / f"{task.sim}-seed{task.seed}"
    try:
        r = json.loads((run_dir / "report.json").read_text())
    except (OSError, ValueError):
        raise RuntimeError(f"{task.key}: the simulator ended without a report; see "
                           f"{run_dir / 'sim.log'}") from None
    return {
        "config": r.get("config"), "ddt_mode": r.get("ddt_mode"),
        "translations": r["translations"], "mismatches": r["mismatches"],
        "mismatch_details": r["mismatch_details"][:5],
        "translations_per_second": r["translations_per_second"],
        "coverage": {name: item["bins"] for name, item in r["coverage"].items()},
        "coverage_xml": str((run_dir / "coverage.xml").resolve()),
        "report": str((run_dir / "report.json").resolve()),
        "replay": replay_command(task.seed, task.translations, task.sim, task.config, mutant),
    }


def _where():
    try:
        from dask.distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def _execute(runner, task, folder, mutant, attempt):
    """A run on a worker: the runner's dict plus where, how long and the status. An
    exception becomes an ``error`` result (the client decides whether to retry)."""
    start = time.monotonic()
    base = {"key": task.key, "seed": task.seed, "sim": task.sim,
            "translations_requested": task.translations, "config_requested": task.config,
            "worker": _where(), "attempt": attempt}
    try:
        result = dict(runner(task, folder, mutant))
    except Exception as e:  # noqa: BLE001 - any failure of a run is reported, not raised
        return {**base, "status": "error", "error": f"{type(e).__name__}: {e}",
                "wall_s": round(time.monotonic() - start, 2)}
    result.update(base)
    result["status"] = "mismatch" if result.get("mismatches") else "ok"
    result["wall_s"] = round(time.monotonic() - start, 2)
    return result


# -- the Dask side ----------------------------------------------------------------------------

def _coerce(value):
    """A ``--cluster-option`` value: JSON (numbers, true/false, lists) or else the string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def jobqueue_kwargs(options, *, defaults=True):
    """dask-jobqueue keyword arguments from ``KEY=VALUE`` strings or a dict; a run is one
    single-threaded process, so ``cores=1``, ``processes=1`` and ``memory="4GB"`` unless set
    (``defaults=False``: only what ``options`` say)."""
    kwargs = {"cores": 1, "processes": 1, "memory": "4GB"} if defaults else {}
    if isinstance(options, dict):
        kwargs.update(options)
        return kwargs
    for option in options or ():
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise CampaignError(f"--cluster-option {option!r}: write KEY=VALUE "
                                f"(e.g. queue=short, walltime=01:00:00)")
        kwargs[key.strip().replace("-", "_")] = _coerce(value)
    return kwargs


def make_jobqueue_cluster(kind, options=None):
    """The dask-jobqueue cluster for ``kind`` (:data:`CLUSTERS`), not yet scaled."""
    if kind not in CLUSTERS:
        raise CampaignError(f"--cluster {kind!r}: one of {sorted(CLUSTERS)}")
    import dask_jobqueue
    return getattr(dask_jobqueue, CLUSTERS[kind])(**jobqueue_kwargs(options))


@contextmanager
def open_client(*, scheduler=None, cluster=None, cluster_options=None, workers=None,
                timeout=10):
    """A connected ``dask.distributed.Client``: to ``scheduler``, to a jobqueue ``cluster``
    scaled to ``workers`` jobs, or to a fresh LocalCluster of ``workers`` processes (default:
    one per core). Raises :class:`FarmError` when the scheduler cannot be reached within
    ``timeout`` seconds or no worker joins it."""
    import dask
    from dask.distributed import Client, LocalCluster
    with dask.config.set(SCHEDULER_CONFIG):
        if scheduler:
            try:
                client = Client(scheduler, timeout=timeout)
            except (OSError, TimeoutError) as e:
                raise FarmError(f"cannot reach the Dask scheduler at {scheduler} within "
                                f"{timeout} s ({e}); start one with `dask scheduler` and "
                                f"workers with `dask worker {scheduler}`, or drop "
                                f"--scheduler for a local cluster") from None
            owner = None
        elif cluster:
            owner = make_jobqueue_cluster(cluster, cluster_options)
            owner.scale(workers or 1)
            client = Client(owner, timeout=timeout)
        else:
            owner = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                 threads_per_worker=1, processes=True,
                                 dashboard_address=":0")
            client = Client(owner, timeout=timeout)
        try:
            if scheduler or cluster:
                try:
                    client.wait_for_workers(1, timeout=max(timeout, 30 if cluster else timeout))
                except (TimeoutError, OSError):
                    raise FarmError(f"no Dask worker joined {client.scheduler.address} "
                                    f"within {timeout} s") from None
            yield client
        finally:
            client.close()
            if owner is not None:
                owner.close()


@contextmanager
def _given(client):
    yield client


class Progress:
    """Runs done/total, translations/s, mismatches so far and the ETA: one line rewritten
    on a terminal, a line per finished run otherwise (or when ``CI`` is set)."""

    def __init__(self, tasks, stream=None):
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() and not os.environ.get("CI")
        self.total_runs = len(tasks)
        self.total_translations = sum(t.translations for t in tasks)
        self.left = {}                             # seed -> its runs not finished yet
        for t in tasks:
            self.left[t.seed] = self.left.get(t.seed, 0) + 1
        self.seeds = len(self.left)
        self.runs = self.translations = self.planned = self.mismatches = self.errors = 0
        self.start = time.monotonic()

    def update(self, result):
        self.runs += 1
        self.left[result["seed"]] -= 1
        self.translations += result.get("translations", 0)
        self.planned += result["translations_requested"]
        self.mismatches += result.get("mismatches", 0)
        self.errors += result["status"] == "error"
        elapsed = time.monotonic() - self.start
        rate = self.translations / elapsed if elapsed else 0.0
        left = self.total_translations - self.planned
        eta = f"{left / rate:.0f} s" if rate and left else ("0 s" if not left else "?")
        seeds = sum(1 for n in self.left.values() if not n)
        line = (f"[farm] seeds {seeds}/{self.seeds}, runs {self.runs}/{self.total_runs}, "
                f"{self.translations} translations, "
                f"{rate:.0f}/s, {self.mismatches} mismatches, {self.errors} errors, ETA {eta}")
        if self.interactive:
            print("\r" + line, end="", file=self.stream, flush=True)
        else:
            print(f"{line}  ({result['key']}: {result['status']})", file=self.stream, flush=True)

    def close(self):
        if self.interactive:
            print(file=self.stream)


def load_results(path):
    """``{key: result}`` of ``results.jsonl`` (the last line of a key wins; a torn last
    line, from an interrupted write, is ignored)."""
    out = {}
    try:
        lines = pathlib.Path(path).read_text().splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        out[r["key"]] = r
    return out


def run_campaign(campaign, *, scheduler=None, cluster=None, cluster_options=None,
                 workers=None, timeout=10, runner=run_seed, stream=None, plot=True,
                 client=None):
    """Run what ``campaign`` has not finished yet and write its report; returns the report.

    ``runner(task, folder, mutant)`` runs one task and returns its result dict
    (:func:`run_seed`; tests pass a fake). ``client``: a connected Dask client to use
    instead of opening one. Raises :class:`FarmError` (see :func:`open_client`).
    """
    from dask.distributed import as_completed

    from iogate.cosim.regress.campaign import write_report
    stream = stream or sys.stdout
    folder = campaign.folder
    folder.mkdir(parents=True, exist_ok=True)
    results_file = folder / "results.jsonl"
    tasks = campaign.tasks()
    keys = {t.key for t in tasks}
    done = {k: r for k, r in load_results(results_file).items()
            if k in keys and r["status"] != "error"}
    todo = [t for t in tasks if t.key not in done]
    print(f"iogate farm: campaign {campaign.name!r}: {len(campaign.seeds)} seeds x "
          f"{len(campaign.sims)} simulators x {len(campaign.translations)} sizes"
          f"{f' x {len(campaign.configs)} Configs' if campaign.configs else ''} = "
          f"{len(tasks)} runs; {len(done)} done before (in {results_file}), "
          f"{len(todo)} to run", file=stream, flush=True)
    start = time.monotonic()
    cores = None
    workers_seen = {}
    if todo:
        with (_given(client) if client else
              open_client(scheduler=scheduler, cluster=cluster, cluster_options=cluster_options,
                          workers=workers, timeout=timeout)) as client:
            info = client.scheduler_info()
            cores = sum(w.get("nthreads", 1) for w in info["workers"].values())
            link = (client.dashboard_link if "dashboard" in info.get("services", {})
                    else "none (the scheduler runs without one)")
            print(f"  scheduler {client.scheduler.address}: {len(info['workers'])} workers, "
                  f"{cores} threads; dashboard: {link}", file=stream, flush=True)
            progress = Progress(todo, stream)
            workers_seen = _dispatch(client, todo, campaign, runner, results_file, progress,
                                     as_completed)
            progress.close()
    wall = time.monotonic() - start
    sessions_file = folder / "sessions.jsonl"
    if todo:
        with open(sessions_file, "a") as f:
            f.write(json.dumps({"started": time.time() - wall, "wall_s": round(wall, 1),
                                "cores": cores, "runs": len(todo)}) + "\n")
    sessions = [json.loads(line) for line in sessions_file.read_text().splitlines()
                if line.strip()] if sessions_file.exists() else []
    finished = load_results(results_file)
    results = [finished[t.key] for t in tasks if t.key in finished]
    report = write_report(campaign, results, folder, wall_s=wall, cores=cores,
                          workers=workers_seen, plot=plot, sessions=sessions)
    print(f"report: {folder / 'campaign.json'} and {folder / 'summary.md'}", file=stream)
    print(f"campaign {campaign.name!r}: {report['runs']} runs, {report['translations']} "
          f"translations, mismatches: {report['mismatches']}, errors: {len(report['errors'])}",
          file=stream, flush=True)
    return report


def _dispatch(client, todo, campaign, runner, results_file, progress, as_completed):
    """Submit ``todo``, resubmit a failure once, append each final result to
    ``results_file``; returns ``{worker: 1}`` of the workers that ran something."""
    folder = str(campaign.folder.resolve())

    def submit(task, attempt):
        # No worker restriction for a retry: a restricted task skips the scheduler's queue
        # and lands on its worker at once, beside the run there, which a crash of that run
        # would take down too. A dead worker's retry runs elsewhere anyway.
        return client.submit(_execute, runner, task, folder, campaign.mutant, attempt,
                             key=f"farm-{task.key}-a{attempt}-{time.time_ns()}", pure=False)

    futures = {submit(t, 1): (t, 1) for t in todo}
    pending = as_completed(list(futures))
    seen = {}
    with open(results_file, "a+b", buffering=0) as raw:
        raw.seek(0, os.SEEK_END)
        if raw.tell():
            raw.seek(-1, os.SEEK_END)
            if raw.read(1) != b"\n":
                raw.write(b"\n")        # a line torn by an interrupt stays apart from ours
    with open(results_file, "a") as log:
        for fut in pending:
            task, attempt = futures.pop(fut)
            try:
                result = fut.result()
            except Exception as e:  # noqa: BLE001 - KilledWorker, a lost connection, ...
                result = {"key": task.key, "seed": task.seed, "sim": task.sim,
                          "translations_requested": task.translations,
                          "config_requested": task.config, "worker": None,
                          "attempt": attempt, "status": "error",
                          "error": f"{type(e).__name__}: {e}"}
            if result["status"] == "error" and result["attempt"] < ATTEMPTS:
                retry = submit(task, result["attempt"] + 1)
                futures[retry] = (task, result["attempt"] + 1)
                pending.add(retry)
                print(f"  {task.key}: {result['error']}; retrying once", file=progress.stream,
                      flush=True)
                continue
            result["finished_at"] = time.time()
            if result.get("worker"):
                seen[result["worker"]] = 1
            log.write(json.dumps(result) + "\n")
            log.flush()
            progress.update(result)
    return seen
