"""The entry points: the ``rtep`` command and its subcommands (``rtep.commands.cli``)."""
