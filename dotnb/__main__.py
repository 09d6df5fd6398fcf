from dotnb.cli.entry import main

raise SystemExit(main())
