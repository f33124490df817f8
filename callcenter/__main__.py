"""`python -m callcenter` is the `callcenter` command (see callcenter.cli)."""

from callcenter.cli import main

raise SystemExit(main())
