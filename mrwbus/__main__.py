from mrwbus.cli import main

raise SystemExit(main())
