#!/bin/sh
# Builds the web console's front end into the build tree (meson runs this;
# see web/meson.build): web/*.html|js|css as they are, and the npm packages
# of web/package.json (xterm.js, noVNC; installed exactly as web/package-lock.json pins them,
# into BUILD/web-npm, from npm's cache when it has them) vendored into
# OUT/vendor/ with their licences. No CDN: the page loads nothing from
# elsewhere. Without npm or a network the build still succeeds; the page
# then says that the serial console is missing, and the browser test skips.
#   web-build.sh SRC_WEB OUT NPM_DIR
#   web-build.sh --install OUT DEST   (meson install: OUT copied to DEST)
set -eu
if [ "$1" = --install ]; then
    dest="${DESTDIR:-}$3"
    mkdir -p "$dest"
    cp -R "$2"/. "$dest"/
    rm -f "$dest/stamp"
    exit 0
fi
src=$1 out=$2 npm=$3
mkdir -p "$out/vendor" "$npm"
for f in "$src"/*.html "$src"/*.js "$src"/*.css "$src"/*.svg; do
    [ -e "$f" ] && cp "$f" "$out/"
done
cp "$src/package.json" "$src/package-lock.json" "$npm/"
x="$npm/node_modules/@xterm/xterm"
if ! cmp -s "$src/package-lock.json" "$npm/node_modules/.package-lock.json.hvm" 2>/dev/null || [ ! -f "$x/lib/xterm.js" ]; then
    if command -v npm >/dev/null &&
        (cd "$npm" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >npm.log 2>&1); then
        cp "$src/package-lock.json" "$npm/node_modules/.package-lock.json.hvm"
    else
        echo "web-build: npm ci failed (see $npm/npm.log): the page has no serial console" >&2
    fi
fi
rm -rf "$out/vendor/xterm"
if [ -f "$x/lib/xterm.js" ]; then
    mkdir -p "$out/vendor/xterm"
    cp "$x/lib/xterm.js" "$x/css/xterm.css" "$x/LICENSE" "$out/vendor/xterm/"
    cp "$x/package.json" "$out/vendor/xterm/package.json"
fi
rm -rf "$out/vendor/novnc"
v="$npm/node_modules/@novnc/novnc"
if [ -f "$v/core/rfb.js" ]; then
    mkdir -p "$out/vendor/novnc"
    cp -R "$v/core" "$v/vendor" "$v/LICENSE.txt" "$v/AUTHORS" "$v/package.json" "$out/vendor/novnc/"
    mkdir -p "$out/vendor/novnc/docs" && cp "$v"/docs/LICENSE.* "$out/vendor/novnc/docs/"
fi
touch "$out/stamp"
