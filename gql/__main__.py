"""`python -m mandate.gql` writes the served schema's SDL to schema.graphql (or to the path given)."""

import sys
from pathlib import Path

from mandate.gql.schema import build_schema


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "schema.graphql")
    target.write_text(build_schema().as_str() + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
