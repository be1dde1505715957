"""The slu-kd-* console scripts."""
import argparse


def cli_parser(prog, doc):
    """An argument parser whose --help shows the module docstring as written (its
    examples and file layouts keep their lines)."""
    return argparse.ArgumentParser(prog=prog, description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
