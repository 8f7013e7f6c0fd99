"""``mazewb`` subcommands: one module per area (train, analysis, ...), registered with
``mazewb.cli.command``. Keep them thin: parse arguments, call the library, print."""
