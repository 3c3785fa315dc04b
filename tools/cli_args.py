"""Argument types shared by the tools, so that a flag's value means one thing in every tool."""
import argparse


def size(text, minimum=1):
    """argparse type: `WxH`, or one number for a square, -> `(W, H)`."""
    from osmn_tf.frames import parse_size  # imported on use: `--help` stays fast

    try:
        width, height = parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if width < minimum or height < minimum:
        raise argparse.ArgumentTypeError(f"size must be at least {minimum}x{minimum}, got {text!r}")
    return width, height
