"""The ``iogate`` command line.

Each subcommand is a thin layer over a module that does the work, so everything here is
also reachable from Python.
"""

import argparse
import os
import sys

__all__ = ["main"]


def _cmd_demo(args):
    from iogate.cosim.scenarios.run import run_demo
    return run_demo(sim=args.sim, waves=args.waves, seed=args.seed, report=args.report)


def _cmd_regress(args):
    if args.batch:
        from iogate.cosim.regress.batch import regress_batch
        return regress_batch(args.seed, args.translations, sim=args.sim)
    from iogate.cosim.regress.run import regress
    return regress(args.seed, args.translations, sim=args.sim, waves=args.waves,
                   config=args.config, mutant=args.mutant)


def _cmd_farm(args):
    from iogate.cosim.regress.farm import (
        Campaign,
        CampaignError,
        FarmError,
        jobqueue_kwargs,
        load_campaign,
        run_campaign,
    )
    try:
        if args.campaign:
            campaign, dispatch = load_campaign(args.campaign)
        else:
            campaign, dispatch = Campaign(seeds="1-4"), {}
        for key, value in (("seeds", args.seeds), ("sims", args.sim),
                           ("translations", args.translations), ("configs", args.configs),
                           ("name", args.name), ("mutant", args.mutant), ("out", args.out)):
            if value is not None:
                setattr(campaign, key, value)
        campaign.__post_init__()        # validate what the command line changed
        options = dict(dispatch.get("cluster_options", {}))
        options.update(jobqueue_kwargs(args.cluster_option or [], defaults=False))
        return_report = run_campaign(
            campaign, scheduler=args.scheduler or dispatch.get("scheduler"),
            cluster=args.cluster or dispatch.get("cluster"), cluster_options=options,
            workers=args.workers or dispatch.get("workers"),
            timeout=args.timeout or dispatch.get("timeout", 10))
    except (CampaignError, FarmError) as e:
        print(f"iogate farm: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("iogate farm: interrupted; finished runs are kept, rerun the same command to "
              "resume", file=sys.stderr)
        return 130
    return 1 if return_report["mismatches"] or return_report["errors"] else 0


def _cmd_shrink(args):
    from iogate.cosim.regress.shrink import shrink
    return shrink(args.seed, sim=args.sim, translations=args.translations, config=args.config,
                  mutant=args.mutant, tests=args.tests, work=args.work)


def _cmd_fuzz(args):
    from iogate.cosim.regress import fuzz
    targets = [t for t in args.targets.split(",") if t]
    unknown = sorted(set(targets) - set(fuzz.TARGETS))
    if unknown:
        print(f"iogate fuzz: unknown targets {', '.join(unknown)} "
              f"(known: {', '.join(fuzz.TARGETS)})", file=sys.stderr)
        return 2
    if args.replay is not None:
        failed = 0
        for target in targets:
            try:
                kind = fuzz.replay(target, args.seed, args.replay)
            except fuzz.Finding as f:
                print(f"{target} seed {args.seed} case {args.replay}: {f}")
                failed = 1
            else:
                print(f"{target} seed {args.seed} case {args.replay}: {kind} (clean)")
        return failed

    def progress(target, done, seconds):
        print(f"  {target}: {done} cases, {seconds:.0f} s", file=sys.stderr)

    results, bad = {}, 0
    for target in targets:
        entry, findings = fuzz.run_target(target, args.cases, args.seed, progress=progress)
        results[target] = entry
        print(f"{target}: {entry['cases']} cases in {entry['seconds']} s, "
              f"{entry['exceptions']} exceptions, {entry['state_changed_on_error']} state "
              f"changes on error, {entry['wrong_answers']} wrong answers")
        for f in findings[:10]:
            print(f"  seed {args.seed} case {f['index']}: {f['kind']}: {f['detail'][:300]}\n"
                  f"    replay: {f['replay']}")
        bad += len(findings)
        if args.out:                     # after each target, so a stopped run keeps its part
            fuzz.merge_results(args.out, {target: entry})
    if args.out:
        print(f"fuzz_cases of {', '.join(results)} merged into {args.out}")
    return 1 if bad else 0


def _cmd_run(args):
    from iogate.cosim.scenarios.run import list_scenarios, run_scenario
    if args.list:
        print(list_scenarios())
        return 0
    if args.scenario is None:
        print("iogate run: name a scenario (iogate run --list names them)", file=sys.stderr)
        return 2
    try:
        return run_scenario(args.scenario, sim=args.sim, seed=args.seed, waves=args.waves,
                            config=args.config)
    except ValueError as e:
        print(f"iogate run: {e}", file=sys.stderr)
        return 2


def _cmd_host(args):
    from iogate.cosim.client.run import main as host_main
    return host_main(args.script, target=args.target, config=args.config, port=args.port,
                     baud=args.baud, waves=args.waves, check=not args.no_check,
                     report=args.report)


def _cmd_generate(args):
    from iogate.firmware.generate import generate

    from iogate.cosim.client.config import config_named
    name = args.config or ("full" if args.full else "default")
    if args.verilog:
        from iogate.cosim.targets.ip import generate_ip
        paths = generate_ip(config_named(name), args.out, name)
    else:
        paths = generate(args.out, config=config_named(name))
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cmd_bench(args):
    import json
    import pathlib
    if args.what == "model":
        from iogate.cosim.bench.model import bench_model
        result = bench_model(seconds=args.seconds)
        out = pathlib.Path(args.out or "results/bench_model.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    elif args.what == "cost":
        from iogate.cosim.bench.cost import markdown, measure_cost
        out = pathlib.Path(args.out or "results/cost.json")
        rows = tuple(args.rows.split(","))
        try:
            result = measure_cost(rows, out=out)
        except ValueError as e:
            print(f"iogate bench cost: {e}", file=sys.stderr)
            return 2
        print(markdown(result))
        print(f"wrote {out}")
        return 0
    else:  # a part of iogate.cosim.bench.run.PARTS, "all" or "readme" (argparse restricts them)
        from iogate.cosim.bench.run import run_bench
        out = pathlib.Path(args.out or "results/bench.json")
        latencies = tuple(int(v) for v in args.latencies.split(","))
        result = run_bench(args.what, sim=args.sim, seconds=args.seconds, out=out,
                           plot=args.plot, latencies=latencies, samples=args.samples,
                           hits=args.hits, translations=args.translations,
                           sweep_translations=args.sweep_translations,
                           readme=args.readme or ("README.md" if args.what == "readme"
                                                  else None))
        result = {k: v for k, v in result.items() if not isinstance(v, (dict, list))}
    for k, v in result.items():
        print(f"{k}: {v}")
    print(f"wrote {out}")
    return 0


def _cmd_build(args):
    import subprocess

    from iogate.boards.build import build, format_report
    build_dir = args.build_dir or f"build/{args.board}"
    print(f"building the {args.board} bitstream in {build_dir} (Yosys and nextpnr from "
          f"YoWASP; minutes) ...", flush=True)
    try:
        report = build(args.board, config=args.config, build_dir=build_dir)
    except subprocess.CalledProcessError as e:
        print(f"build failed ({e}); the tools' logs are {build_dir}/top.rpt (Yosys) and "
              f"{build_dir}/top.tim (nextpnr)")
        return 1
    print(format_report(report))
    print(f"bitstream: {report['bitstream']}")
    print(f"report: {build_dir}/report.json")
    return 0 if report["fits"] and report["met"] else 1


def _cmd_board(args):
    import json
    import pathlib

    from iogate.cosim.scenarios.on_board import run_foundation
    from iogate.cosim.targets.board import BoardLink
    link = BoardLink.open(args.port, args.baud)
    print(f"iogate board on {args.port}: {link.ram_size // 1024} KiB at {link.ram_base:#x}, "
          f"{link.clk_hz / 1e6:g} MHz", flush=True)
    if args.scenario:
        from iogate.cosim.scenarios.on_board import run_on_board
        report = run_on_board(link, args.scenario, seed=args.seed)
    else:
        report = run_foundation(link, seed=args.seed, translations=args.translations)
    out = pathlib.Path(args.report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for key in ("scenario", "result", "translations", "faults", "iotlb_hits",
                "iotlb_misses", "cycles_mean", "cycles_max", "frames", "seconds"):
        if key in report:
            print(f"  {key}: {report[key]}")
    if report.get("error"):
        print(f"  scenario failed: {report['error']}")
    print(f"mismatches: {report['mismatches']}")
    for line in report["mismatch_details"][:10]:
        print(line)
    print(f"report: {out}")
    return 0 if report["mismatches"] == 0 and not report.get("error") else 1


def _cmd_formal(args):
    from iogate.hdl.formal.run import list_properties, run_named
    if args.list:
        print(list_properties())
        return 0
    return run_named(args.names, all_=args.all, ci=args.ci, mutants=args.mutants,
                     solver=args.solver, out=args.out)


def _config(args):
    from iogate.hdl import Config
    if getattr(args, "full", False):
        return Config.full()
    return Config()


def _parser():
    p = argparse.ArgumentParser(prog="iogate", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="build the RTL, translate a seeded DMA stream, report")
    d.add_argument("--sim", choices=("verilator", "icarus"),
                   default=os.environ.get("SIM", "verilator") or "verilator")
    d.add_argument("--waves", action="store_true",
                   default=os.environ.get("WAVES", "0") == "1", help="dump a waveform")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--report", default="build/demo/report.json",
                   help="where the JSON report goes")
    d.set_defaults(func=_cmd_demo)

    r = sub.add_parser("regress", help="seeded random regression of the RTL against the model")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--translations", type=int, default=10_000)
    r.add_argument("--sim", choices=("verilator", "icarus"),
                   default=os.environ.get("SIM", "verilator") or "verilator")
    r.add_argument("--waves", action="store_true",
                   default=os.environ.get("WAVES", "0") == "1", help="dump a waveform")
    r.add_argument("--batch", action="store_true",
                   help="batch mode: requests played and responses recorded by hardware "
                        "around the RTL (no Python per translation; no churn, no waveform)")
    from iogate.cosim.regress.mutants import MUTANTS
    from iogate.cosim.regress.world import CONFIGS
    r.add_argument("--config", choices=sorted(CONFIGS), default=None,
                   help="this Config instead of the seed's own choice")
    r.add_argument("--mutant", choices=sorted(MUTANTS), default=None,
                   help="test only: a deliberately broken RTL (iogate.cosim.regress.mutants)")
    r.set_defaults(func=_cmd_regress)

    fa = sub.add_parser("farm", help="a regression campaign (seeds x Configs x simulators x "
                                     "sizes) on Dask: local cores, a scheduler or a batch "
                                     "system; resumable; one merged report")
    fa.add_argument("campaign", nargs="?", help="a TOML campaign file (keys: "
                    "name, seeds, sims, translations, configs, mutant, out, scheduler, "
                    "cluster, cluster_options, workers, timeout); the options below win")
    fa.add_argument("--seeds", default=None, help="e.g. 1-20 or 1-4,9 (default 1-4)")
    fa.add_argument("--sim", default=None, help="simulators, e.g. verilator,icarus "
                    "(default verilator)")
    fa.add_argument("--translations", default=None,
                    help="translations per run; several sizes comma-separated (default 2000)")
    fa.add_argument("--configs", default=None, help="run each seed on these Configs "
                    f"({','.join(sorted(CONFIGS))}) instead of its own choice")
    fa.add_argument("--name", default=None, help="the campaign (folder build/farm/NAME)")
    fa.add_argument("--out", default=None, help="the campaign folder instead")
    fa.add_argument("--mutant", choices=sorted(MUTANTS), default=None,
                    help="test only: run the campaign on a deliberately broken RTL")
    fa.add_argument("--scheduler", default=None, help="a running scheduler, tcp://HOST:PORT")
    fa.add_argument("--cluster", choices=("slurm", "pbs", "lsf"), default=None,
                    help="start workers as batch jobs with dask-jobqueue")
    fa.add_argument("--cluster-option", action="append", metavar="KEY=VALUE",
                    help="a dask-jobqueue cluster argument (queue=short, walltime=01:00:00, "
                         "account=..., job_extra_directives='[\"--exclusive\"]'); repeatable")
    fa.add_argument("--workers", type=int, default=None,
                    help="local worker processes (default: one per core) or batch jobs")
    fa.add_argument("--timeout", type=float, default=None,
                    help="seconds to reach the scheduler and see a worker (default 10)")
    fa.set_defaults(func=_cmd_farm)

    sh = sub.add_parser("shrink", help="cut a failing seed down to the shortest event "
                                       "sequence that still mismatches; write it as a "
                                       "directed cocotb test")
    sh.add_argument("seed", type=int)
    sh.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    sh.add_argument("--translations", type=int, default=10_000)
    sh.add_argument("--config", choices=sorted(CONFIGS), default=None)
    sh.add_argument("--mutant", choices=sorted(MUTANTS), default=None,
                    help="test only: shrink a failure of a deliberately broken RTL")
    sh.add_argument("--tests", default="tests/regress_shrunk",
                    help="where the directed test goes")
    sh.add_argument("--work", default="build/shrink", help="scratch folder for the replays")
    sh.set_defaults(func=_cmd_shrink)

    fz = sub.add_parser("fuzz", help="malformed inputs into the front-ends and the model's "
                                     "parsers: no exception, state unchanged after an error")
    fz.add_argument("--targets", default="virtio,vfio,iommufd,commands,device_contexts,ptes",
                    help="comma-separated targets")
    fz.add_argument("--cases", type=int, default=100_000, help="cases per target")
    fz.add_argument("--seed", type=int, default=1)
    fz.add_argument("--replay", type=int, default=None, metavar="INDEX",
                    help="rerun one case (by its index under --seed) and show its finding")
    fz.add_argument("--out", default="results/reliability.json",
                    help="merge fuzz_cases into this JSON ('' for none)")
    fz.set_defaults(func=_cmd_fuzz)

    from iogate.cosim.client.config import PRESETS
    u = sub.add_parser("run", help="run one front-end scenario on the RTL, checked against "
                                   "the model")
    u.add_argument("scenario", nargs="?", help="the scenario (see --list)")
    u.add_argument("--list", action="store_true", help="name the scenarios, one line each")
    u.add_argument("--sim", choices=("verilator", "icarus"),
                   default=os.environ.get("SIM", "verilator") or "verilator")
    u.add_argument("--seed", type=int, default=1)
    u.add_argument("--config", default=None, choices=tuple(PRESETS),
                   help="the Config (linux: default unless named; the others: full only)")
    u.add_argument("--waves", action="store_true",
                   default=os.environ.get("WAVES", "0") == "1", help="dump a waveform")
    u.set_defaults(func=_cmd_run)

    from iogate.cosim.client.run import TARGETS
    h = sub.add_parser("host", help="run a host script (plain Python given `host`) on the "
                                    "model, a simulator or a board, checked against the model")
    h.add_argument("script", help="the script: a .py file run with `host` in its globals")
    h.add_argument("--target", choices=TARGETS, default="model")
    h.add_argument("--port", default=None, help="the board's serial port or a pyserial URL")
    h.add_argument("--baud", type=int, default=1_000_000)
    h.add_argument("--config", choices=tuple(PRESETS), default="default",
                   help="the Config preset to build (model and simulators)")
    h.add_argument("--waves", action="store_true",
                   default=os.environ.get("WAVES", "0") == "1", help="dump a waveform")
    h.add_argument("--no-check", action="store_true",
                   help="do not compare with the architectural model")
    h.add_argument("--report", default="build/host/report.json",
                   help="where the JSON report goes")
    h.set_defaults(func=_cmd_host)

    g = sub.add_parser("generate", help="write the C header and the device-tree fragment, "
                                        "or with --verilog the IOMMU as Verilog IP")
    g.add_argument("--out", default="build/generated")
    g.add_argument("--full", action="store_true", help="for the full first-target Config "
                                                       "(same as --config full)")
    g.add_argument("--verilog", action="store_true",
                   help="write iogate_<config>.v (module iogate_iommu) and its port table "
                        "(.ports.json, .ports.md) instead (docs/ip.md)")
    g.add_argument("--config", choices=tuple(PRESETS), default=None,
                   help="the Config preset (default: default, or full with --full)")
    g.set_defaults(func=_cmd_generate)

    from iogate.boards.build import BOARDS, CONFIGS
    f = sub.add_parser("build", help="build a board's bitstream and report its resources "
                                     "and Fmax (needs the fpga extra)")
    f.add_argument("--board", required=True, choices=tuple(BOARDS))
    f.add_argument("--config", default="board", choices=CONFIGS,
                   help="board: the board's own (default); small: the ICEBreaker's; "
                        "default: Config(); full: the whole first target (on the ECPIX-5, "
                        "as much of it as the RTL builds)")
    f.add_argument("--build-dir", default=None, help="default build/<board>")
    f.set_defaults(func=_cmd_build)

    r = sub.add_parser("board", help="run the foundation workload on a board over its "
                                     "serial port, checked against the model")
    r.add_argument("--port", required=True, help="the board's UART, e.g. /dev/ttyUSB1")
    r.add_argument("--baud", type=int, default=1_000_000)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--translations", type=int, default=2000)
    r.add_argument("--scenario", default=None,
                   help="run this `iogate run` scenario instead of the foundation workload "
                        "(virtio, vfio, coherency, ownership, bypass, restricted-dma)")
    r.add_argument("--report", default="build/board/report.json")
    r.set_defaults(func=_cmd_board)

    b = sub.add_parser("bench", help="run a benchmark and write JSON")
    b.add_argument("what", choices=("model", "hw", "msi", "workloads", "sweep", "concurrency",
                                    "speed", "resources", "cost", "all", "readme"),
                   help="model: translations/s of the model; hw: RTL cycles; msi: the RTL's "
                        "MSI translation cycles alone, merged into --out; workloads: "
                        "DMA-shaped workloads on the RTL; sweep: IOTLB hit rate against "
                        "entries and ways (Icarus); concurrency: hit-under-miss and two "
                        "ports; speed, resources: when their modules are installed; cost: "
                        "LUT4/FF/Fmax of each Config option, core alone; all: "
                        "every one; readme: rewrite README.md's table from --out")
    b.add_argument("--seconds", type=float, default=2.0, help="per model figure")
    b.add_argument("--out", default=None, help="the JSON report (default "
                   "results/bench_model.json for model, results/bench.json otherwise)")
    b.add_argument("--sim", choices=("verilator", "icarus"),
                   default=os.environ.get("SIM", "verilator") or "verilator")
    b.add_argument("--latencies", default="1,10,50",
                   help="memory latencies (extra cycles per beat) to time walks at")
    b.add_argument("--samples", type=int, default=3, help="misses per walk kind and latency")
    b.add_argument("--hits", type=int, default=256, help="requests in the hit burst")
    b.add_argument("--translations", type=int, default=2000,
                   help="translations per workload (workloads)")
    b.add_argument("--sweep-translations", type=int, default=2000,
                   help="translations per workload and IOTLB geometry (sweep)")
    b.add_argument("--rows", default=("full,sv57,pd8,pd20,process,msi_flat,msi_mrif,igs_msi,"
                                      "igs_both,msi"),
                   help="cost: the Config rows (iogate.cosim.bench.cost.ROWS)")
    b.add_argument("--readme", default=None,
                   help="also rewrite this README's bench section from the report")
    b.add_argument("--plot", default="results/miss_latency.png",
                   help="PNG of miss cycles against memory latency (needs matplotlib)")
    b.set_defaults(func=_cmd_bench)

    fm = sub.add_parser("formal", help="run formal proofs (SymbiYosys; the formal extra)")
    fm.add_argument("names", nargs="*", help="properties or mutants (--list names them)")
    fm.add_argument("--all", action="store_true", help="every property, full depth")
    fm.add_argument("--ci", action="store_true", help="the CI subset at its CI depths")
    fm.add_argument("--mutants", action="store_true",
                    help="with --all/--ci: the mutants too (each must fail)")
    fm.add_argument("--list", action="store_true", help="name the properties and mutants")
    fm.add_argument("--solver", default="yices", choices=("yices", "z3", "boolector"))
    fm.add_argument("--out", default="results/formal.json")
    fm.set_defaults(func=_cmd_formal)
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
