from sagewalk.cli import main

raise SystemExit(main())
