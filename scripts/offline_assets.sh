#!/usr/bin/env bash
# Fetch MathJax 3 and the ipywidgets HTML manager from the npm registry into _offline/
# (git-ignored), so the built book typesets math and shows widgets with no CDN.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=_offline
[ -f "$dest/mathjax/tex-mml-chtml.js" ] && [ -f "$dest/embed-amd.js" ] && [ -f "$dest/require.js" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent mathjax@3.2.2 @jupyter-widgets/html-manager@1.0.6 requirejs@2.3.8 >/dev/null)
for t in "$tmp"/*.tgz; do mkdir -p "$tmp/x" && tar -xzf "$t" -C "$tmp/x" && mv "$tmp/x/package" "$tmp/$(basename "$t" .tgz)" && rm -rf "$tmp/x"; done
rm -rf "$dest" && mkdir -p "$dest/mathjax/output/chtml/fonts" "$dest/mathjax/input/tex"
mj="$tmp/mathjax-3.2.2/es5"
cp "$mj/tex-mml-chtml.js" "$dest/mathjax/"
cp -r "$mj/output/chtml/fonts/woff-v2" "$dest/mathjax/output/chtml/fonts/"
cp -r "$mj/input/tex/extensions" "$dest/mathjax/input/tex/"
[ -d "$mj/a11y" ] && cp -r "$mj/a11y" "$mj/sre" "$dest/mathjax/" 2>/dev/null || true
hm="$tmp/jupyter-widgets-html-manager-1.0.6/dist"
cp "$hm/embed-amd.js" "$dest/"
find "$hm" -maxdepth 1 \( -name '*.woff*' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) -exec cp {} "$dest/" \;
cp "$tmp/requirejs-2.3.8/require.js" "$dest/"
echo "offline assets in $dest/ ($(du -sh "$dest" | cut -f1))"
