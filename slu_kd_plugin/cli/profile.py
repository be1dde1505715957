"""slu-kd-profile: the settings of a recipe profile (slu_kd_plugin/recipe/settings.py).

    slu-kd-profile demo --shell                     # what examples/common/stages.sh evals
    slu-kd-profile demo --shell --augment units,hidden   # ... with a recipe's --augment
    slu-kd-profile demo --recipe synthetic --shell  # the offline demo's (examples/synthetic)
    slu-kd-profile paper --yaml ft_kd               # slu_kd_plugin/config/ft_kd.yaml
    slu-kd-profile paper --write-yaml               # every yaml file in slu_kd_plugin/config/

Without --shell or --yaml it prints each stage's fairseq-train arguments, with the
run-time values (paths, the training split, recorded sizes) as upper-case names.
"""
import argparse
import inspect
import shlex
import sys
from dataclasses import replace

from ..recipe import settings, shell


def main(argv=None):
    ap = argparse.ArgumentParser(prog="slu-kd-profile", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="debug | demo | paper")
    ap.add_argument("--recipe", choices=("corpus", "synthetic"), default="corpus",
                    help="corpus: examples/{librispeech,fsc,snips}; synthetic: the offline demo")
    ap.add_argument("--augment", help="fine-tuning DA instead of the profile's: units,hidden | units | hidden | none")
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--shell", action="store_true", help="shell assignments and args_STAGE functions")
    what.add_argument("--yaml", metavar="STAGE", help="the hydra yaml of a stage (teacher, pt_kd, am_pt, ft_kd)")
    what.add_argument("--write-yaml", action="store_true",
                      help="write every stage's yaml to slu_kd_plugin/config/ (committed: the paper profile's)")
    args = ap.parse_args(argv)
    try:
        p = settings.profile(args.name, args.recipe)
        if args.augment is not None:
            settings.augment_flags(args.augment)  # refuses what is not a DA setting
            p = replace(p, augment=args.augment)
    except (KeyError, ValueError) as e:
        # --shell: the recipes print it with their usage text
        print(e.args[0] if args.shell else f"slu-kd-profile: {e.args[0]}", file=sys.stderr)
        return 2
    if args.shell:
        sys.stdout.write(shell.render(p))
    elif args.yaml or args.write_yaml:
        from ..recipe import hydra
        if args.yaml:
            sys.stdout.write(hydra.render(p, args.yaml))
        else:
            for path in hydra.write_all(p):
                print(path)
    else:
        for name, fn in shell.STAGES.items():
            if fn is settings.hf_teacher and p.hf_teacher is None:
                continue
            params = list(inspect.signature(fn).parameters)[1:]
            values = {k: ["METHOD..."] if k == "method" else k.upper() for k in params}
            print(f"{name[5:]}: {shlex.join(fn(p, **values))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
