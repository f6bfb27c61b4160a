from vlascope.cli import main

raise SystemExit(main())
