from vidsage_core.cli import main

# Guarded: worker processes (vidsage_core.workers) are spawned, and a spawned child imports the
# parent's __main__ module; unguarded, each worker would start the command line again.
if __name__ == "__main__":
    raise SystemExit(main())
