"""The console's pure SVG drawings: correct shapes, gaps, hostile labels and absurd input."""

import math
import xml.etree.ElementTree as ET

from audit import svgplot

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 - our own output, parsed to prove it is well-formed


def test_line_plot_draws_one_polyline_per_run_between_gaps():
    points = [(0, 1), (1, 2), (2, None), (3, 4), (4, 5), (5, None), (6, 3)]
    svg = parse(svgplot.line_plot(points, start=0, end=6, title="Hash rate", unit="GH/s"))
    lines = svg.findall(f"{SVG}polyline")
    assert [len(line.get("points").split()) for line in lines] == [2, 2]
    assert len(svg.findall(f"{SVG}circle")) == 1  # the lone last point
    assert "Hash rate: 3 GH/s (max 5)" in svg.find(f"{SVG}text").text


def test_line_plot_keeps_points_inside_its_box():
    points = [(-100, 5), (50, -3), (1e6, 1e12)]
    svg = parse(svgplot.line_plot(points, start=0, end=100, title="t", width=200, height=50))
    for pair in svg.find(f"{SVG}polyline").get("points").split():
        x, y = (float(v) for v in pair.split(","))
        assert 0 <= x <= 200 and 0 <= y <= 50


def test_line_plot_with_no_data_says_so():
    svg = parse(svgplot.line_plot([(1, None), (2, math.inf)], start=0, end=10, title="Temperature"))
    assert svg.find(f"{SVG}polyline") is None
    assert svg.find(f"{SVG}text").text == "Temperature: —"


def test_a_hostile_title_cannot_inject_markup():
    markup = svgplot.line_plot([(0, 1), (1, 2)], start=0, end=1, title='<script>x</script>"', unit="&")
    assert "<script>" not in markup
    parse(markup)


def test_tier_tree_links_children_to_parents_and_escapes_names():
    nodes = [
        svgplot.TreeNode("h", "hospital", 0),
        svgplot.TreeNode("c", "clinic <b>", 2, parent="h", state="late"),
        svgplot.TreeNode("m", "mobile", 3, parent="c", state="revoked"),
        svgplot.TreeNode("x", "orphan", 9, parent="nowhere"),
    ]
    markup = svgplot.tier_tree(nodes, tier_names=["H", "U", "R", "M"])
    svg = parse(markup)
    assert len(svg.findall(f"{SVG}line")) == 2
    assert len(svg.findall(f"{SVG}g")) == 4
    assert "<b>" not in markup
    assert svg.findall(f"{SVG}line")[1].get("stroke-dasharray")  # a revoked link is dashed


def test_tier_tree_is_bounded():
    nodes = [svgplot.TreeNode(str(i), str(i), i % 4) for i in range(svgplot.MAX_TREE_NODES + 50)]
    svg = parse(svgplot.tier_tree(nodes, tier_names=["a", "b", "c", "d"]))
    assert len(svg.findall(f"{SVG}g")) == svgplot.MAX_TREE_NODES
