from dotnb.entry import main

raise SystemExit(main())
