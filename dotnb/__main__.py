from dotnb.cli import main

raise SystemExit(main())
