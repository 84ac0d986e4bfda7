from vidsage_core.cli import main

raise SystemExit(main())
