"""slu-kd-train: fairseq-train with a thread setting and CPU workers under torchrun.

    slu-kd-train [--threads N] DATA --user-dir slu_kd_plugin ...        # one process
    torchrun --nproc_per_node 2 -m slu_kd_plugin.cli.train [--threads N] DATA --cpu ...
    torchrun --nnodes 2 --node_rank R --master_addr HOST --master_port 29500 \\
        --nproc_per_node 8 -m slu_kd_plugin.cli.train DATA ...          # GPUs, two machines

Everything but ``--threads`` goes to fairseq-train unchanged. (fairseq-validate is not
wrapped: on CPU workers its distributed path fails inside fairseq; validation inside
training pools over workers.)

``--threads N`` (default: $SLU_KD_THREADS, else torch's choice) fixes torch's intra-op
pool of this process (and of every torchrun worker) to N threads. torch's default is
one thread per core *per process*: two trainings side by side on 2 cores run 4 OpenMP
threads, whose barriers then wait on threads that are not running (README: "A shared
machine").

Under torchrun (RANK / WORLD_SIZE / LOCAL_RANK set), fairseq's own torchrun support
divides by the CUDA device count, so it cannot run CPU workers. Each worker is then
started as one fairseq ``env://`` worker: ``--distributed-init-method env://
--distributed-world-size WORLD_SIZE --distributed-rank RANK --distributed-no-spawn
--device-id LOCAL_RANK``, and, with ``--cpu`` or without CUDA, ``--distributed-backend
gloo --ddp-backend legacy_ddp`` (torch's DDP takes no device ids for CPU modules). Options
given on the command line win over these.
"""
import os
import sys

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def split_threads(argv):
    """(threads or None, the other arguments): ``--threads N`` / ``--threads=N`` removed."""
    threads, rest, i = os.environ.get("SLU_KD_THREADS") or None, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--threads" and i + 1 < len(argv):
            threads, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--threads="):
            threads = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    if threads is not None and not (str(threads).isdigit() and int(threads) > 0):
        sys.exit(f"slu-kd-train: --threads (or SLU_KD_THREADS) takes a positive whole number, not {threads!r}")
    return (int(threads) if threads else None), rest


def given(argv, option):
    return any(a == option or a.startswith(option + "=") for a in argv)


def torchrun_args(argv, env, cuda):
    """fairseq options that make this process torchrun's worker RANK (none outside torchrun)."""
    if not all(v in env for v in TORCHRUN_VARS):
        return []
    wanted = {"--distributed-init-method": "env://", "--distributed-world-size": env["WORLD_SIZE"],
              "--distributed-rank": env["RANK"], "--device-id": env["LOCAL_RANK"]}
    if "--cpu" in argv or not cuda:
        wanted.update({"--distributed-backend": "gloo", "--ddp-backend": "legacy_ddp"})
    extra = [x for k, v in wanted.items() if not given(argv, k) for x in (k, v)]
    return extra + ([] if "--distributed-no-spawn" in argv else ["--distributed-no-spawn"])


def set_threads(threads):
    import torch

    # the env vars for anything this process starts (dataloader workers, subprocesses)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def launch(prog, cli_main, argv=None):
    """Apply --threads and torchrun's worker options, then run fairseq's ``cli_main``."""
    threads, argv = split_threads(sys.argv[1:] if argv is None else list(argv))
    import torch

    if threads:
        set_threads(threads)
    argv += torchrun_args(argv, os.environ, torch.cuda.is_available())
    rank = os.environ.get("RANK", "0")
    # printed by every worker (fairseq silences the logging of ranks > 0)
    print(f"{prog}: rank {rank}: {torch.get_num_threads()} torch threads", file=sys.stderr, flush=True)
    sys.argv = [prog, *argv]
    fairseq_log_format()
    # this process imported the plugin before fairseq: --user-dir then finds it imported
    # and registers nothing itself
    import slu_kd_plugin

    slu_kd_plugin.register()
    cli_main()


def fairseq_log_format():
    """The log lines fairseq-train/-validate write (``date | INFO | name | message``), at
    INFO. fairseq_cli sets them up before importing fairseq, but some fairseq modules the
    plugin imports call logging.basicConfig(level=DEBUG) first, which then wins."""
    import logging

    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S", level=os.environ.get("LOGLEVEL", "INFO").upper(),
                        stream=sys.stdout, force=True)


def main(argv=None):
    from fairseq_cli.train import cli_main

    launch("slu-kd-train", cli_main, argv)


if __name__ == "__main__":
    main()
