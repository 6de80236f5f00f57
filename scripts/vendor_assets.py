"""Copy the console's front-end libraries from node_modules/ into static files.

Run after `npm ci`: `python scripts/vendor_assets.py`. The target directory is generated
(gitignored); WhiteNoise serves it, so nothing is fetched from a CDN at run time.
"""

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
TARGET = ROOT / "src" / "siyu" / "console" / "static" / "vendor"

# (package, file inside the package, name under static/vendor/)
FILES = [
    ("htmx.org", "dist/htmx.min.js", "htmx.min.js"),
    ("alpinejs", "dist/cdn.min.js", "alpine.min.js"),
    ("echarts", "dist/echarts.min.js", "echarts.min.js"),
]
LICENSES = ("LICENSE", "LICENSE.md", "LICENSE.txt")


def main() -> int:
    missing = [pkg for pkg, *_ in FILES if not (NODE_MODULES / pkg).is_dir()]
    if missing:
        print(f"missing in node_modules: {', '.join(missing)}; run `npm ci` first", file=sys.stderr)
        return 1
    TARGET.mkdir(parents=True, exist_ok=True)
    versions = {}
    for package, source, name in FILES:
        package_dir = NODE_MODULES / package
        shutil.copyfile(package_dir / source, TARGET / name)
        for license_name in LICENSES:
            if (package_dir / license_name).is_file():
                shutil.copyfile(package_dir / license_name, TARGET / f"{package}.LICENSE")
                break
        meta = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
        versions[package] = meta["version"]
        print(f"{package} {meta['version']}: {source} -> {TARGET.relative_to(ROOT) / name}")
    (TARGET / "versions.json").write_text(json.dumps(versions, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
