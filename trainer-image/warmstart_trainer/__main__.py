from warmstart_trainer.cli import main

raise SystemExit(main())
