"""The `tailrace` command line (layer 5). Commands live in cli/commands/, one module each."""
