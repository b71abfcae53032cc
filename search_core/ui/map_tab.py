"""The library map tab: every sound placed by similarity; a click on a point plays it."""
from __future__ import annotations

import gradio as gr

from .page import USER_ERRORS, Tab

# Hooks plotly's click on the map's points (the plot is re-drawn on every tab open) and sends
# the point's "<layout key>:<row>" to Python through the hidden map-pick element.
MAP_CLICK_JS = """
const hook = () => {
  for (const div of document.querySelectorAll('#library-map .js-plotly-plot')) {
    if (div.dataset.soundalike === '1' || typeof div.on !== 'function') continue;
    div.dataset.soundalike = '1';
    div.on('plotly_click', (ev) => {
      const p = ev && ev.points && ev.points[0];
      if (!p || p.customdata === undefined) return;
      props.value = String(p.customdata) + '#' + Date.now();  // a click on the same point plays it again
      trigger('change');
    });
  }
};
new MutationObserver(hook).observe(document.body, {childList: true, subtree: true});
hook();
"""


class MapTab(Tab):
    def map_view(self, query_vector=None):
        """The map figure (the last query as a ★) and the line above it."""
        from ..libmap import map_figure

        try:
            layout = self.service.library_map()
        except USER_ERRORS as exc:
            return None, f"_{self.service.access.visible_error(exc)}_"
        if layout is None:
            return None, "The library is empty: index the bundled game sounds (Indexing tab) to see its map."
        query = layout.place(query_vector) if query_vector is not None else None
        how = "t-SNE of the embeddings" if layout.method == "tsne" else "PCA of the embeddings"
        cats = len(set(layout.labels))
        info = (f"**{len(layout)} sounds** in {cats} categor{'ies' if cats != 1 else 'y'}, placed by similarity ({how}): "
                "neighbours sound alike. Hover a point for its name; **click it to hear it**. Click a category in the legend "
                "to hide it, double-click to show it alone." + (" Your last search is the ★." if query else ""))
        return map_figure(layout, query), info

    def play_from_map(self, pick: str):
        pick = (pick or "").split("#")[0]
        found = self.service.map_sound(pick) if pick and pick != "query" else None
        if not found:
            return gr.update(value=None, label="That point is not playable (or the map changed: open the tab again)")
        path, row = found
        return gr.update(value=str(path), label=f"{row['name']} — {row['label']}")
