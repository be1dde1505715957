"""slu-kd-validate: fairseq-validate with --threads and CPU workers under torchrun
(see slu_kd_plugin.cli.train): several workers each score a shard of the subset and
the pooled counts give the numbers one worker gives."""
from .train import launch


def main(argv=None):
    from fairseq_cli.validate import cli_main

    launch("slu-kd-validate", cli_main, argv)


if __name__ == "__main__":
    main()
