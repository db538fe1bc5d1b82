#!/usr/bin/env bash
# Fetch MathJax 3 and the ipywidgets HTML manager from the npm registry into _offline/
# (git-ignored), so the built book typesets math and shows widgets with no CDN.
#   _offline/static/  -> _build/html/_static/  (html_static_path: MathJax, require.js, widgets)
#   _offline/extra/   -> _build/html/          (html_extra_path: the widget manager's fonts)
# The widget manager loads its fonts relative to its AMD module URL, which require.js resolves
# against the page's folder: book/@jupyter-widgets/html-manager/dist/<hash>.woff2.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=_offline
static=$dest/static
fonts=$dest/extra/book/@jupyter-widgets/html-manager/dist
if [ -f "$static/mathjax/tex-mml-chtml.js" ] && [ -f "$static/embed-amd.js" ] \
   && [ -f "$static/require.js" ] && [ -n "$(ls -A "$fonts" 2>/dev/null)" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent mathjax@3.2.2 @jupyter-widgets/html-manager@1.0.6 \
  requirejs@2.3.8 >/dev/null)
for t in "$tmp"/*.tgz; do
  mkdir -p "$tmp/x" && tar -xzf "$t" -C "$tmp/x"
  mv "$tmp/x/package" "$tmp/$(basename "$t" .tgz)" && rm -rf "$tmp/x"
done
rm -rf "$dest" && mkdir -p "$static/mathjax/output/chtml/fonts" "$static/mathjax/input/tex" \
  "$fonts"
mj="$tmp/mathjax-3.2.2/es5"
cp "$mj/tex-mml-chtml.js" "$static/mathjax/"
cp -r "$mj/output/chtml/fonts/woff-v2" "$static/mathjax/output/chtml/fonts/"
cp -r "$mj/input/tex/extensions" "$static/mathjax/input/tex/"
[ -d "$mj/a11y" ] && cp -r "$mj/a11y" "$mj/sre" "$static/mathjax/" 2>/dev/null || true
hm="$tmp/jupyter-widgets-html-manager-1.0.6/dist"
cp "$hm/embed-amd.js" "$static/"
find "$hm" -maxdepth 1 \( -name '*.woff*' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
  -exec cp {} "$fonts/" \;
cp "$tmp/requirejs-2.3.8/require.js" "$static/"
echo "offline assets in $dest/ ($(du -sh "$dest" | cut -f1))"
