"""The step picture in a real browser (headless Chromium through Selenium, the ``browser``
fixture): no console error, the phases by buttons, arrow keys and the URL hash, a δ's
tooltip against the trace, one element per unit and per weight, the wide network's render
time, and the screenshots the docs use."""
from __future__ import annotations

import time

import numpy as np
import pytest
from test_visual import textbook, wide  # the same traces as the page's own tests

import pybackprop as bp
from pybackprop.visual import format_number


def dropout_softmax():
    m = bp.Sequential([bp.Dense(5, activation="tanh"), bp.Dropout(keep_prob=0.6),
                       bp.Dense(3, activation="softmax")], input_dim=4, dtype="float64", seed=2)
    m.compile(loss="categorical_crossentropy", optimizer=bp.SGD(lr=0.3))
    return m.explain([0.5, -1.0, 2.0, 0.1], np.array([2]))


@pytest.fixture
def page(tmp_path):
    """Write a trace's page and return its file:// URL."""
    def write(trace, name="step.html"):
        path = tmp_path / name
        path.write_text(trace.to_html(), encoding="utf-8")
        return path.as_uri()
    return write


def load(browser, url):
    browser.get(url)
    browser.execute_script("return document.readyState")
    errors = browser.console_errors()
    assert not errors, errors
    return browser


def phase(browser):
    return browser.execute_script("return [PBStep.phase(), location.hash]")


def css(browser, selector):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, selector)


def hover(browser, element):
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(element).perform()


def test_phases_by_buttons_keys_and_hash(browser, page, screenshot_dir):
    from selenium.webdriver.common.keys import Keys

    t = textbook()
    url = page(t)
    load(browser, url)
    phases = browser.execute_script("return PBStep.payload.phases")
    assert len(phases) == 8 and phase(browser) == ["forward-1", ""]
    assert [b.get_attribute("data-phase") for b in css(browser, ".pb-phase")] == phases
    nxt = css(browser, ".pb-next")[0]
    for name in phases[1:]:  # the next button, phase by phase
        nxt.click()
        assert phase(browser) == [name, "#" + name]
        if name == "forward-3":
            browser.save_screenshot(str(screenshot_dir / "step-forward.png"))
    assert nxt.get_attribute("disabled") is not None
    body = css(browser, "body")[0]
    for name in reversed(phases[:-1]):  # the left arrow, back to the start
        body.send_keys(Keys.ARROW_LEFT)
        assert phase(browser) == [name, "#" + name]
    body.send_keys(Keys.ARROW_RIGHT)
    assert phase(browser)[0] == "forward-2"
    browser.back()  # the browser's history walks the phases too
    time.sleep(0.1)
    assert phase(browser)[0] == "forward-1"
    browser.forward()
    time.sleep(0.1)
    assert phase(browser)[0] == "forward-2"
    css(browser, '.pb-phase[data-phase="update"]')[0].click()
    assert phase(browser) == ["update", "#update"]
    edges = {e.get_attribute("data-id"): e for e in css(browser, ".pb-elabel.pb-lu") if e.is_displayed()}
    assert len(edges) == 12 + 16 + 4
    w, wn = t.layers[0]["W"][0, 0], t.layers[0]["W_new"][0, 0]
    assert edges["Wn1.0.0"].text == f"{format_number(w)}→{format_number(wn)}"
    browser.save_screenshot(str(screenshot_dir / "step-update.png"))
    assert not browser.console_errors()


def test_a_link_opens_at_its_phase(browser, page):
    url = page(textbook())
    for name in ("backward-2", "loss", "update", "forward-3"):
        load(browser, "about:blank")
        load(browser, url + "#" + name)
        assert phase(browser) == [name, "#" + name]
        current = css(browser, ".pb-phase.pb-current")
        assert [b.get_attribute("data-phase") for b in current] == [name]
    load(browser, "about:blank")
    load(browser, url + "#no-such-phase")
    assert phase(browser)[0] == "forward-1"


def test_tooltip_of_a_delta_equals_the_trace(browser, page, screenshot_dir):
    t = textbook()
    load(browser, page(t) + "#backward-2")
    delta = t.layers[1]["delta"][0, 0]
    label = css(browser, '[data-id="d2.0"]')[0]
    assert label.text == f"δ = {format_number(delta)}"
    hover(browser, label)
    tip = css(browser, "#pb-tip")[0]
    assert tip.is_displayed()
    text = tip.text
    dA, fp = t.layers[1]["dL_da"][0, 0], t.layers[1]["fprime"][0, 0]
    assert f"δ₂,₁ = dL/da₂,₁ · σ′(z₂,₁) = {format_number(dA)} · {format_number(fp)} = {format_number(delta)}" in text
    assert f"full value: {repr(float(delta)).replace('-', '−')}" in text
    lit = {e.get_attribute("data-id") for e in css(browser, ".pb-hl[data-id]")}
    assert {"d2.0", "dA2.0", "fp2.0"} <= lit  # the number and what it came from
    assert css(browser, '.pb-unit.pb-hl[data-col="2"][data-unit="0"]')  # its unit
    browser.save_screenshot(str(screenshot_dir / "step-backward.png"))
    # the keyboard: focus another δ, the tooltip follows
    other = css(browser, '[data-id="d2.3"]')[0]
    browser.execute_script("arguments[0].focus()", other)
    assert css(browser, "#pb-tip")[0].is_displayed()
    assert format_number(t.layers[1]["delta"][0, 3]) in css(browser, "#pb-tip")[0].text
    assert browser.execute_script("return document.activeElement.getAttribute('data-id')") == "d2.3"
    browser.execute_script("arguments[0].blur()", other)
    assert not css(browser, "#pb-tip")[0].is_displayed()
    # a weight's edge in the backward phase: its gradient, highlighting its input and its δ
    hover(browser, css(browser, '[data-id="dW2.1.0"]')[0])
    text = css(browser, "#pb-tip")[0].text
    assert text.startswith("dL/dW₂[2,1] = a₁,₂ · δ₂,₁ =") and format_number(t.layers[1]["dW"][1, 0]) in text
    assert css(browser, '.pb-edge.pb-hl[data-layer="2"][data-from="1"][data-to="0"]') or \
        css(browser, '.pb-unit.pb-hl[data-col="1"][data-unit="1"]')
    assert not browser.console_errors()


def test_every_number_is_focusable(browser, page):
    load(browser, page(dropout_softmax()) + "#forward-2")
    nums = css(browser, ".pb-num")
    assert nums and all(n.get_attribute("tabindex") == "0" and n.get_attribute("data-id") for n in nums)
    dropped = css(browser, ".pb-unit.pb-dropped")
    mask = browser.execute_script("return PBStep.payload.layers[1].dropout.mask")
    assert len(dropped) == mask.count(0) > 0
    assert all(d.get_attribute("data-col") == "1" for d in dropped)
    assert "keep p = 0.6" in css(browser, ".pb-dropbadge")[0].text
    assert "1/p" in css(browser, "#pb-explain")[0].text
    for name, kind in (("loss", "f"), ("backward-2", "b"), ("backward-1", "b"), ("update", "u")):
        browser.execute_script("PBStep.setPhase(arguments[0])", name)
        for label in css(browser, f".pb-ulabel.pb-l{kind}"):  # what a phase shows can be hovered
            if label.is_displayed() and label.get_attribute("data-id") != "a0.0":
                hover(browser, label)
                assert css(browser, "#pb-tip")[0].text
                break
    fused = browser.execute_script("return PBStep.records('d2.0')[0].f")
    assert "fused" in fused
    assert not browser.console_errors()


@pytest.mark.parametrize("make, sizes", [(textbook, [3, 4, 4, 1]), (dropout_softmax, [4, 5, 3])],
                         ids=["textbook", "dropout"])
def test_one_element_per_unit_and_per_weight(browser, page, make, sizes):
    load(browser, page(make()))
    assert len(css(browser, ".pb-unit")) == sum(sizes)
    assert len(css(browser, ".pb-edge")) == sum(a * b for a, b in zip(sizes, sizes[1:]))
    for c, n in enumerate(sizes):
        assert len(css(browser, f'.pb-unit[data-col="{c}"]')) == n
    for k, (a, b) in enumerate(zip(sizes, sizes[1:]), start=1):
        assert len(css(browser, f'.pb-edge[data-layer="{k}"]')) == a * b


def test_wide_network_renders_fast(browser, page, screenshot_dir):
    url = page(wide(), "wide.html")
    start = time.perf_counter()
    load(browser, url)
    wall = time.perf_counter() - start
    render_ms = browser.execute_script("return PBStep.renderMs")
    print(f"\n784-256-10 in Chromium: script {render_ms:.0f} ms, page load {wall * 1000:.0f} ms")
    assert render_ms < 5000 and wall < 15
    assert len(css(browser, ".pb-unit")) == 10  # the output column is drawn unit by unit
    assert len(css(browser, '.pb-cell[data-col="0"]')) == 784  # the strips, a cell per unit
    assert len(css(browser, '.pb-cell[data-col="1"]')) == 256
    assert len(css(browser, '.pb-wcell[data-layer="1"]')) == 32 * 32
    assert len(css(browser, '.pb-wcell[data-layer="2"]')) == 32 * 10
    assert not css(browser, ".pb-edge")
    browser.execute_script("PBStep.setPhase('backward-1')")
    cell = css(browser, '.pb-cell[data-col="1"][data-unit="5"]')[0]
    hover(browser, cell)
    text = css(browser, "#pb-tip")[0].text
    assert "δ₁,₆ =" in text and "dL/da₁,₆ =" in text
    browser.execute_script("PBStep.setPhase('forward-1')")
    hover(browser, css(browser, '.pb-wcell[data-layer="1"][data-row="0"][data-colblock="0"]')[0])
    assert css(browser, "#pb-tip")[0].text.startswith("W₁[1–24, 1–8] = mean of 192")
    hover(browser, css(browser, ".pb-head h1")[0])  # the pointer off the drawing: no tooltip in the picture
    browser.execute_script("PBStep.setPhase('backward-1')")
    assert not css(browser, "#pb-tip")[0].is_displayed()
    browser.save_screenshot(str(screenshot_dir / "step-wide.png"))
    assert not browser.console_errors()


def test_a_strip_is_one_tab_stop(browser, page):
    """784 + 256 strip cells and 1 344 matrix cells: one tab stop a group, the arrows move inside it."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    load(browser, page(wide(), "wide.html") + "#forward-1")
    stops = browser.execute_script("return Array.prototype.map.call(document.querySelectorAll("
                                   "'.pb-cell[tabindex=\"0\"]'), function (e) { return e.getAttribute('data-id'); })")
    assert stops == ["B1.0.0", "B2.0.0", "u0.0", "u1.0"]  # the two heat maps, the two strips
    assert len(css(browser, '.pb-cell[tabindex="-1"]')) == 784 + 256 + 32 * 32 + 32 * 10 - 4

    def press(*keys, shift=False):
        chain = ActionChains(browser)
        if shift:
            chain = chain.key_down(Keys.SHIFT)
        chain = chain.send_keys(*keys)
        (chain.key_up(Keys.SHIFT) if shift else chain).perform()

    def focused():
        return browser.execute_script("var e = document.activeElement; return [e.getAttribute('data-id'), "
                                      "e.getAttribute('tabindex'), PBStep.phase()]")

    first = css(browser, '.pb-cell[data-col="1"][data-unit="0"]')[0]
    browser.execute_script("arguments[0].focus()", first)
    press(Keys.ARROW_DOWN)
    assert focused() == ["u1.1", "0", "forward-1"]  # the next unit; the phase stays
    assert first.get_attribute("tabindex") == "-1"  # the roving tab stop moved with the focus
    assert "a₁,₂ = ReLU(z₁,₂)" in css(browser, "#pb-tip")[0].text
    rows = 64  # 256 units drawn as 4 columns of 64 cells
    press(Keys.ARROW_RIGHT, shift=True)
    assert focused() == [f"u1.{1 + rows}", "0", "forward-1"]
    press(Keys.ARROW_UP, Keys.ARROW_UP)
    assert focused()[0] == f"u1.{rows - 1}"  # up from the top of a column: the bottom of the previous one
    press(Keys.ARROW_RIGHT)  # outside the strip's keys: the phases
    assert focused()[2] == "forward-2"
    press(Keys.TAB)
    assert focused()[0] not in {f"u1.{rows}", f"u1.{rows + 1}"} and not focused()[0].startswith("u1.")
    cell = css(browser, '.pb-wcell[data-layer="1"][data-row="0"][data-colblock="0"]')[0]
    browser.execute_script("arguments[0].focus()", cell)
    press(Keys.ARROW_DOWN)
    assert focused()[0] == "B1.1.0"  # a heat map: down its column of blocks
    press(Keys.ARROW_RIGHT, shift=True)
    assert focused()[0] == "B1.1.1"
    assert not browser.console_errors()


def test_the_notebook_iframe_works(browser, tmp_path):
    """``trace._repr_html_()`` as Jupyter shows it: a sandboxed ``<iframe srcdoc>`` (scripts only, no URL of
    its own, where ``history.pushState`` throws): the page draws, the keys and buttons step through the
    phases, the hash does not throw. The iframe's errors do not reach the browser's log, so the test
    collects them inside the frame (an error while loading leaves no ``PBStep``)."""
    from selenium.webdriver.common.keys import Keys

    t = textbook()
    host = tmp_path / "notebook.html"
    host.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>a notebook</title></head><body>"
                    "<div class='output'>" + t._repr_html_() + "</div></body></html>", encoding="utf-8")
    load(browser, host.as_uri())
    frame = css(browser, "iframe.pybackprop-step")[0]
    browser.switch_to.frame(frame)
    try:
        for _ in range(50):  # the srcdoc document loads after its host
            if browser.execute_script("return !!window.PBStep"):
                break
            time.sleep(0.05)
        assert browser.execute_script("return PBStep.phase()") == "forward-1"
        browser.execute_script("window.pbErrors = []; window.addEventListener('error', function (e) "
                               "{ window.pbErrors.push(String(e.message)); });")
        assert len(css(browser, ".pb-unit")) == 3 + 4 + 4 + 1
        css(browser, ".pb-next")[0].click()
        assert browser.execute_script("return PBStep.phase()") == "forward-2"
        css(browser, "body")[0].send_keys(Keys.ARROW_RIGHT)
        assert browser.execute_script("return PBStep.phase()") == "forward-3"
        css(browser, '.pb-phase[data-phase="backward-2"]')[0].click()
        label = css(browser, '[data-id="d2.0"]')[0]
        hover(browser, label)
        assert css(browser, "#pb-tip")[0].is_displayed()
        assert f"= {format_number(t.layers[1]['delta'][0, 0])}" in css(browser, "#pb-tip")[0].text
        assert browser.execute_script("return location.href") == "about:srcdoc#backward-2"
        assert browser.execute_script("return window.pbErrors") == []
    finally:
        browser.switch_to.default_content()
    assert not browser.console_errors()


def test_the_numbers_under_a_unit_do_not_overlap(browser, page):
    """In every phase, the numbers written at a unit (z, a, b, the mask and ã, dL/da, f′, δ, dL/db) stand
    apart (3 px at least side by side); the backward phase of a layer after a dropout shows the ã its dL/dW are made of."""
    m = bp.Sequential([bp.Dropout(keep_prob=0.7), bp.Dense(5, activation="leaky_relu"), bp.Dropout(keep_prob=0.6),
                       bp.Dense(3, activation="softmax")], input_dim=4, dtype="float32", seed=2)
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.3))
    load(browser, page(m.explain([0.5, -1.0, 2.0, 0.1], [0.2, 0.7, 0.1])))
    for name in browser.execute_script("return PBStep.payload.phases"):
        browser.execute_script("PBStep.setPhase(arguments[0])", name)
        clashes = browser.execute_script("""
            var out = [];
            document.querySelectorAll('.pb-unit').forEach(function (u) {
              var boxes = Array.prototype.filter.call(u.querySelectorAll('.pb-ulabel'), function (t) {
                return getComputedStyle(t).display !== 'none'; }).map(function (t) {
                var r = t.getBoundingClientRect(); return [t.getAttribute('data-id'), r]; });
              for (var i = 0; i < boxes.length; i++) for (var j = i + 1; j < boxes.length; j++) {
                var a = boxes[i][1], b = boxes[j][1];
                if (a.left < b.right + 3 && b.left < a.right + 3 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
                  out.push([boxes[i][0], boxes[j][0]]);
              }
            });
            return out;""")
        assert clashes == [], (name, clashes)
    browser.execute_script("PBStep.setPhase('backward-2')")
    shown = {e.get_attribute("data-id") for e in css(browser, ".pb-ulabel") if e.is_displayed()}
    assert {f"ad2.{i}" for i in range(5)} <= shown and not any(s.startswith("ad1.") for s in shown)
    assert not browser.console_errors()


def test_a_diverging_step_in_the_browser(browser, page):
    """An inf gradient: the page draws, the edge is grey, the tooltip's full value is ∞."""
    m = bp.Sequential([bp.Dense(2, activation="relu"), bp.Dense(1)], input_dim=1, dtype="float32", seed=0)
    m.compile(loss="mse")
    load(browser, page(m.explain([1e38], [0.0])) + "#backward-1")
    label = css(browser, '[data-id="dW1.0.0"]')[0]
    assert label.text == "∞"
    hover(browser, label)
    assert "full value: ∞" in css(browser, "#pb-tip")[0].text
    assert not browser.console_errors()
