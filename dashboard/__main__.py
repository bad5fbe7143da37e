"""`python -m dashboard [--host 127.0.0.1] [--port 8050]` (also `epi-ml dashboard`)."""

from __future__ import annotations

import argparse
import importlib
import sys
import threading

from dashboard.app import ExposedWithoutCredentials, create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dashboard", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8050)
    args = parser.parse_args(argv)
    try:
        app = create_app(host=args.host)
    except ExposedWithoutCredentials as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # torch and the models take seconds to import: load them now, not in the first request
    threading.Thread(target=importlib.import_module, args=("epi_ml.models.lifecycle",), daemon=True).start()
    app.run(host=args.host, port=args.port, debug=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
