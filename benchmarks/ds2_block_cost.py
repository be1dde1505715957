"""CPU cost of the DS2 block: forward+backward time per step for each preset.

    python benchmarks/ds2_block_cost.py                       # all presets
    python benchmarks/ds2_block_cost.py --presets tiny small  # skip the ~14 s/step paper one

Each preset runs over the hidden-state size it is meant for (paper: 768-dim
speech-BERT states; small and tiny: 128-dim), batch 32 x 250 frames, no padding,
training mode (BatchNorm batch statistics, as in a real update).
"""
import argparse
import time

import torch

from slu_kd_plugin.models.ds2_block import DS2_PRESETS, DS2Block

INPUT_DIMS = {"paper": 768, "small": 128, "tiny": 128}


def time_preset(name, input_dim, batch, frames, steps, warmup):
    """Seconds per forward+backward step (mean, min) and the parameter count.

    The min is reported too: on a shared machine it is the least disturbed step.
    """
    torch.manual_seed(0)
    block = DS2Block.build(input_dim, **DS2_PRESETS[name]).train()
    x = torch.randn(batch, frames, input_dim)
    padding_mask = torch.zeros(batch, frames, dtype=torch.bool)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        out, _ = block(x, padding_mask)
        out.sum().backward()
        block.zero_grad(set_to_none=True)
        if step >= warmup:  # the first step pays one-off allocation costs
            times.append(time.perf_counter() - start)
    params = sum(p.numel() for p in block.parameters())
    return sum(times) / len(times), min(times), params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(DS2_PRESETS), choices=list(DS2_PRESETS))
    parser.add_argument("--input-dim", type=int, help="override every preset's input dim")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {args.batch} x {args.frames} frames, fwd+bwd, "
          f"{args.steps} timed steps after {args.warmup} warm-up")
    print(f"{'preset':<8} {'input_dim':>9} {'params':>12} {'mean s/step':>12} {'min s/step':>11}")
    for name in args.presets:
        input_dim = args.input_dim or INPUT_DIMS[name]
        mean, best, params = time_preset(name, input_dim, args.batch, args.frames,
                                         args.steps, args.warmup)
        print(f"{name:<8} {input_dim:>9} {params:>12,} {mean:>12.3f} {best:>11.3f}", flush=True)


if __name__ == "__main__":
    main()
