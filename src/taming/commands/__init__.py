"""Subcommands of the `taming` CLI; each module defines `register(subparsers)`."""
