"""The playground's page in a real browser (headless Chromium through Selenium; skipped without it).

A :class:`PlaygroundServer` runs on a free port in a thread; the page is loaded
from it. Every test fails on a console error (the 400s a test provokes on
purpose aside), and the training test saves ``playground.png`` into the
screenshot folder for the docs.
"""
from __future__ import annotations

import json
import math
import time
from typing import Any, Callable, List

import pytest

from pybackprop.playground.server import PlaygroundServer


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "the condition") -> Any:
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def load(browser, srv: PlaygroundServer, hash_: str = "") -> None:
    browser.get("about:blank")
    browser.get(srv.url + hash_)
    wait_for(lambda: browser.execute_script("return document.body.dataset.ready === 'true'"), what="the page")


def errors(browser, allowed_status: int = 0) -> List[Any]:
    """The console errors, without the 'Failed to load resource ... status of <allowed_status>' a test provoked."""
    found = browser.console_errors()
    if allowed_status:
        found = [e for e in found if f"status of {allowed_status}" not in e["message"]]
    return found


def js(browser, script: str) -> Any:
    return browser.execute_script(script)


def test_page_draws_the_network_points_and_bars(browser, playground) -> None:
    load(browser, playground, "#dataset=circle&layers=4,3&activations=tanh,relu")
    snap = js(browser, "return window.PBPlayground.snapshot")
    sizes = snap["net"]["sizes"]
    assert sizes == [2, 4, 3, 1]
    units = js(browser, "return document.querySelectorAll('#net .pb-unit').length")
    edges = js(browser, "return document.querySelectorAll('#net .pb-edge').length")
    assert units == sum(sizes) and edges == 2 * 4 + 4 * 3 + 3 * 1
    assert js(browser, "return document.querySelectorAll('#points .pg-point').length") == 250
    assert js(browser, "return document.querySelectorAll('#grad-bars .pg-grad-row').length") == 3
    assert js(browser, "return document.querySelectorAll('#layer-controls .pg-layer').length") == 2
    assert js(browser, "return document.querySelectorAll('.pg-dataset').length") == 6  # 5 sets and the CSV tile
    assert not errors(browser)


def test_training_xor_lowers_the_test_loss(browser, playground, screenshot_dir) -> None:
    load(browser, playground, "#dataset=xor&noise=5&layers=6,4&activations=tanh,tanh&lr=0.03&show_test=1&seed=3")
    before = float(browser.find_element("id", "test-loss").text)
    browser.find_element("id", "play").click()
    wait_for(lambda: int(browser.find_element("id", "step-count").text) >= 1500, timeout=60, what="1500 steps")
    assert js(browser, "return window.PBPlayground.playing") is True
    browser.save_screenshot(str(screenshot_dir / "playground.png"))
    browser.find_element("id", "play").click()
    wait_for(lambda: js(browser, "return !window.PBPlayground.playing"), what="the pause")
    time.sleep(0.3)
    after = float(browser.find_element("id", "test-loss").text)
    assert after < 0.5 * before, (before, after)
    steps = int(browser.find_element("id", "step-count").text)
    browser.find_element("id", "one-step").click()
    wait_for(lambda: int(browser.find_element("id", "step-count").text) == steps + 1, what="one step")
    js(browser, "document.querySelector('#net .pb-edge[data-layer=\"2\"][data-from=\"1\"][data-to=\"3\"]')"
                ".dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))")
    w = js(browser, "return window.PBPlayground.snapshot.net.W[1][1][3]")
    text = browser.find_element("id", "hover-info").text
    assert "weight W2[2,4]" in text and f"= {float(f'{w:.5g}'):g}" in text.replace("e-0", "e-"), (text, w)
    assert not errors(browser)


def test_spiral_screenshot_with_a_deep_net(browser, playground, screenshot_dir) -> None:
    load(browser, playground, "#dataset=spiral&noise=10&layers=8,8,6&activations=tanh,tanh,tanh&lr=0.01"
                               "&optimizer=adam&batch_size=10&seed=1")
    browser.find_element("id", "play").click()
    wait_for(lambda: int(browser.find_element("id", "step-count").text) >= 2500, timeout=90, what="2500 steps")
    browser.save_screenshot(str(screenshot_dir / "playground-spiral.png"))
    browser.find_element("id", "play").click()
    assert not errors(browser)


URL_CONFIG = {"dataset": "gauss", "noise": 25, "seed": 42, "train_fraction": 0.7, "samples": 300,
              "layers": [3, 5, 2], "activations": ["relu", "sigmoid", "tanh"], "lr": 0.3, "batch_size": 17,
              "optimizer": "adam", "l2": 0.01, "keep_prob": 0.8, "problem": "classification"}


def to_hash(cfg: dict) -> str:
    return "#" + "&".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in cfg.items())


def test_url_state_round_trip(browser, playground) -> None:
    load(browser, playground, to_hash(URL_CONFIG))
    assert js(browser, "return window.PBPlayground.config") == URL_CONFIG
    value = lambda id_: browser.find_element("id", id_).get_attribute("value")  # noqa: E731
    assert (value("noise"), value("seed"), value("train_fraction"), value("batch_size")) == ("25", "42", "70", "17")
    assert (value("lr"), value("optimizer"), value("l2"), value("keep_prob"), value("problem")) == \
        ("0.3", "adam", "0.01", "0.8", "classification")
    cards = browser.find_elements("css selector", "#layer-controls .pg-layer")
    assert [c.find_element("css selector", ".pg-units").text for c in cards] == ["3 units", "5 units", "2 units"]
    assert [c.find_element("css selector", "select").get_attribute("value") for c in cards] == \
        ["relu", "sigmoid", "tanh"]
    assert js(browser, "return document.querySelector('.pg-dataset.pg-selected').dataset.dataset") == "gauss"
    assert len(js(browser, "return window.PBPlayground.snapshot.train")) == 210
    weights = js(browser, "return window.PBPlayground.snapshot.net.W")
    # the page's own URL holds the whole state: loading it again gives the same data and initial weights
    url = browser.current_url
    for key, v in URL_CONFIG.items():
        assert f"{key}=" in url
    browser.get("about:blank")
    browser.get(url)
    wait_for(lambda: js(browser, "return document.body.dataset.ready === 'true'"), what="the page again")
    assert js(browser, "return window.PBPlayground.snapshot.net.W") == weights
    # a control changes the URL
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "optimizer")).select_by_value("rmsprop")
    wait_for(lambda: "optimizer=rmsprop" in browser.current_url, what="the URL to follow the control")
    browser.find_element("id", "add-layer").click()
    wait_for(lambda: "layers=3%2C5%2C2%2C2" in browser.current_url or "layers=3,5,2,2" in browser.current_url,
             what="a fourth layer in the URL")
    assert js(browser, "return window.PBPlayground.snapshot.net.sizes") == [2, 3, 5, 2, 2, 1]
    assert not errors(browser)


def test_hidden_controls_flag(browser, playground) -> None:
    load(browser, playground, "#dataset=xor&hide=controls")
    shown = lambda sel: browser.find_element("css selector", sel).is_displayed()  # noqa: E731
    for control in ("lr", "optimizer", "l2", "keep_prob", "noise", "dataset", "layers", "csv", "seed"):
        assert not shown(f"[data-control='{control}']"), control
    assert shown("#play") and shown("#net") and shown("#heatmap")
    assert "hide=controls" in browser.current_url  # kept in the URL the page writes
    load(browser, playground, "#dataset=xor&hide=noise,lr")
    assert not shown("[data-control='noise']") and not shown("[data-control='lr']")
    assert shown("[data-control='optimizer']") and shown("[data-control='dataset']")
    assert not errors(browser)


def test_clicking_a_point_opens_the_step_picture(browser, playground) -> None:
    load(browser, playground, "#dataset=circle&layers=3&activations=relu&show_test=1")
    point = browser.find_element("css selector", "#points .pg-point.pg-test")
    index = int(point.get_attribute("data-index"))
    js(browser, f"document.querySelector('#points .pg-test[data-index=\"{index}\"]')"
                ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    wait_for(lambda: browser.find_element("id", "overlay").is_displayed(), what="the overlay")
    assert f"test point {index}" in browser.find_element("id", "overlay-title").text
    frame = browser.find_element("id", "step-frame")
    assert "<html" in (frame.get_attribute("srcdoc") or "").lower()
    browser.switch_to.frame(frame)
    try:
        wait_for(lambda: browser.execute_script("return document.body && document.body.innerText.length > 20"),
                 what="the step picture's text")
    finally:
        browser.switch_to.default_content()
    link = browser.find_element("id", "overlay-newtab").get_attribute("href")
    assert f"/explain/" in link and f"split=test&index={index}" in link
    browser.find_element("id", "overlay-close").click()
    assert not browser.find_element("id", "overlay").is_displayed()
    assert not errors(browser)


def test_csv_upload_error_and_success(browser, playground, tmp_path) -> None:
    load(browser, playground, "#dataset=xor")
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y,label\n1,2,0\n3,oops,1\n", encoding="utf-8")
    browser.find_element("id", "csv-file").send_keys(str(bad))
    box = wait_for(lambda: browser.find_element("id", "csv-error").is_displayed()
                   and browser.find_element("id", "csv-error"), what="the CSV error")
    assert "row 3, column 2: 'oops' is not a number" in box.text and "bad.csv" in box.text
    assert not errors(browser, allowed_status=400)
    good = tmp_path / "good.csv"
    good.write_text("a,b,label\n" + "\n".join(f"{i % 9 - 4},{i % 7 - 3},{int(i % 9 > 4)}" for i in range(80)),
                    encoding="utf-8")
    browser.find_element("id", "csv-file").send_keys(str(good))
    wait_for(lambda: js(browser, "return window.PBPlayground.config.dataset") == "csv", what="the CSV data")
    assert not browser.find_element("id", "csv-error").is_displayed()
    assert js(browser, "return document.querySelectorAll('#points .pg-point').length") == 40
    assert "dataset=csv" in browser.current_url
    assert not errors(browser)


def test_a_bad_link_shows_the_message_and_starts_with_defaults(browser, playground) -> None:
    load(browser, playground, "#lr=-1&layers=1000000&activations=tanh")
    message = browser.find_element("id", "error").text
    assert "layers[0]" in message or "lr:" in message
    assert js(browser, "return window.PBPlayground.config.lr") == 0.03
    assert not errors(browser, allowed_status=400)


def test_the_api_error_of_a_step_is_shown(browser, playground) -> None:
    load(browser, playground, "#dataset=sine&problem=regression&layers=8,8&activations=relu,relu&lr=10")
    browser.find_element("id", "play").click()
    wait_for(lambda: "diverged" in browser.find_element("id", "error").text, timeout=30, what="the divergence")
    assert js(browser, "return window.PBPlayground.playing") is False
    weights = json.dumps(js(browser, "return window.PBPlayground.snapshot.net.W"))
    assert "null" not in weights and "NaN" not in weights
    assert not errors(browser)


def test_the_same_url_twice_gives_the_same_weights_after_the_same_steps(browser, playground) -> None:
    """A link reproduces a run exactly: the page's steps (button or play) equal the library's own Session."""
    from pybackprop.playground.session import Config, Session

    cfg = {"dataset": "spiral", "noise": 15, "seed": 7, "layers": [5, 4], "activations": ["tanh", "relu"],
           "lr": 0.03, "batch_size": 7, "optimizer": "adam", "l2": 0.001, "keep_prob": 0.8}
    runs = []
    for _ in range(2):
        load(browser, playground, to_hash(cfg))
        for _ in range(5):  # clicked faster than the answers come: each click is one step, none lost
            browser.find_element("id", "one-step").click()
        wait_for(lambda: js(browser, "return window.PBPlayground.snapshot.step") == 5, what="five steps")
        time.sleep(0.3)
        assert js(browser, "return window.PBPlayground.snapshot.step") == 5
        runs.append(js(browser, "return window.PBPlayground.snapshot.net"))
    assert runs[0]["W"] == runs[1]["W"] and runs[0]["b"] == runs[1]["b"]
    direct = Session(Config.from_dict(cfg))
    assert direct.step(5)["net"]["W"] == runs[0]["W"]  # to the last bit (JSON floats round-trip exactly)
    browser.find_element("id", "play").click()  # the page's own loop: an epoch per redraw
    wait_for(lambda: js(browser, "return window.PBPlayground.snapshot.step") >= 300, timeout=60, what="300 steps")
    browser.find_element("id", "play").click()
    wait_for(lambda: js(browser, "return !window.PBPlayground.playing"), what="the pause")
    time.sleep(0.5)
    snap = js(browser, "return window.PBPlayground.snapshot")
    direct.step(snap["step"] - 5)
    assert direct.snapshot()["net"]["W"] == snap["net"]["W"]
    assert not errors(browser)


def test_deep_sigmoid_layers_the_bars_fall_and_the_warning_fires(browser, playground, screenshot_dir) -> None:
    def bars() -> List[float]:
        return js(browser, "return [...document.querySelectorAll('#grad-bars .pg-grad-bar')]"
                           ".map((b) => parseFloat(b.style.width))")

    load(browser, playground, "#dataset=circle&layers=8,8,8,8&activations=sigmoid,sigmoid,sigmoid,sigmoid")
    browser.find_element("id", "one-step").click()
    wait_for(lambda: js(browser, "return window.PBPlayground.snapshot.step") == 1, what="one step")
    widths = bars()
    assert len(widths) == 5 and widths == sorted(widths) and widths[0] < widths[-1] - 15  # the first bar fell
    ratio = browser.find_element("id", "grad-ratio").text
    assert ratio.startswith("first layer / output layer: ") and "e-" in ratio  # 4 layers: below 1, above 1e-4
    assert not browser.find_element("id", "grad-warning").is_displayed()
    load(browser, playground, "#dataset=circle&layers=8,8,8,8,8,8&activations=" + ",".join(["sigmoid"] * 6))
    browser.find_element("id", "one-step").click()
    warning = wait_for(lambda: browser.find_element("id", "grad-warning").is_displayed()
                       and browser.find_element("id", "grad-warning"), what="the warning")
    assert warning.text.startswith("vanishing gradients: the first layer's gradient norm is")
    assert warning.get_attribute("data-kind") == "vanishing"
    browser.save_screenshot(str(screenshot_dir / "playground-vanishing.png"))
    assert not errors(browser)


def test_the_1d_regression_draws_its_curve_and_points(browser, playground, screenshot_dir) -> None:
    load(browser, playground, "#dataset=sine&problem=regression&layers=8,8&activations=tanh,tanh&lr=0.03"
                               "&show_test=1")
    assert js(browser, "return document.getElementById('heatmap').classList.contains('pg-line')")
    cy = js(browser, "return [...document.querySelectorAll('#points .pg-point')].map((c) => +c.getAttribute('cy'))")
    assert len(cy) == 500 and min(cy) > 0 and max(cy) < 300 and max(cy) - min(cy) > 200  # sin over the plot
    browser.find_element("id", "play").click()
    wait_for(lambda: js(browser, "return window.PBPlayground.snapshot.step") >= 2000, timeout=60, what="2000 steps")
    browser.find_element("id", "play").click()
    out = js(browser, "return window.PBPlayground.snapshot.output")
    assert out["kind"] == "line" and len(out["x"]) == len(out["y"]) == 100
    # the curve on the canvas: a blue pixel in the column of x = pi/2, near sin(pi/2) = 1
    x0, x1, y0, y1 = out["domain"]
    px, py = (math.pi / 2 - x0) / (x1 - x0) * 300, (1 - (1 - y0) / (y1 - y0)) * 300
    near = js(browser, f"""const ctx = document.getElementById('heatmap').getContext('2d');
        const d = ctx.getImageData({int(px) - 2}, {int(py) - 30}, 5, 60).data;
        for (let k = 0; k < d.length; k += 4) if (d[k + 2] > 150 && d[k] < 60) return true;
        return false;""")
    assert near, "no curve near sin(pi/2)"
    browser.save_screenshot(str(screenshot_dir / "playground-sine.png"))
    assert not errors(browser)


def test_keyboard_points_edges_and_hover_values(browser, playground) -> None:
    from selenium.webdriver.common.keys import Keys

    load(browser, playground, "#dataset=gauss&layers=3&activations=relu")
    wait_for(lambda: js(browser, "return !!window.PBPlayground.snapshot.values"), what="the units' values")
    values = js(browser, "return window.PBPlayground.snapshot.values")
    first = js(browser, "return window.PBPlayground.snapshot.train[0]")
    assert [len(v) for v in values] == [2, 3, 1] and values[0] == first[:2]  # the selected point's values
    js(browser, "document.querySelector('#net .pb-unit[data-col=\"2\"]')"
                ".dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))")
    assert f"the output \u0177 = {float(f'{values[2][0]:.5g}'):g} for the input" in \
        browser.find_element("id", "hover-info").text
    plot = browser.find_element("id", "points")
    plot.send_keys(Keys.ARROW_RIGHT)
    assert js(browser, "return document.querySelector('#points .pg-current').dataset.index") == "1"
    plot.send_keys(Keys.ENTER)
    wait_for(lambda: browser.find_element("id", "overlay").is_displayed(), what="the overlay")
    assert "train point 1 (" in browser.find_element("id", "overlay-title").text
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_for(lambda: not browser.find_element("id", "overlay").is_displayed(), what="Escape to close")
    edge = browser.find_element("css selector", "#net .pb-edge[data-layer='2'][data-from='2']")
    browser.execute_script("arguments[0].focus()", edge)
    assert "weight W2[3,1]" in browser.find_element("id", "hover-info").text
    assert "chain rule" in browser.find_element("id", "hover-info").text
    edge.send_keys(Keys.ENTER)  # the chain rule of this weight: the step picture at layer 2's backward phase
    wait_for(lambda: browser.find_element("id", "overlay").is_displayed(), what="the overlay from an edge")
    assert browser.find_element("id", "overlay-newtab").get_attribute("href").endswith("split=train&index=1#backward-2")
    browser.switch_to.frame(browser.find_element("id", "step-frame"))
    try:  # the step picture opened at layer 2's backward phase, where dL/dW2[3,1] is drawn with its formula
        wait_for(lambda: js(browser, "return window.PBStep && window.PBStep.phase()") == "backward-2",
                 what="the backward phase of layer 2")
        assert js(browser, "return document.querySelectorAll('[data-id=\"dW2.2.0\"]').length") >= 1
    finally:
        browser.switch_to.default_content()
    browser.find_element("id", "overlay-close").click()
    assert not errors(browser)


def test_a_vanished_session_is_made_again_and_said(browser, playground) -> None:
    load(browser, playground, "#dataset=xor&layers=3&activations=tanh&seed=5")
    old = js(browser, "return window.PBPlayground.snapshot.session")
    ttl, playground.store.ttl = playground.store.ttl, 0.0
    try:
        playground.store.expire()  # the server forgot this tab's session (idle, or restarted)
    finally:
        playground.store.ttl = ttl
    browser.find_element("id", "one-step").click()
    wait_for(lambda: "session had expired" in browser.find_element("id", "error").text, what="the message")
    wait_for(lambda: js(browser, "return window.PBPlayground.snapshot.step") == 1, what="the step, in the new session")
    assert js(browser, "return window.PBPlayground.snapshot.session") != old
    assert js(browser, "return window.PBPlayground.config.seed") == 5  # the same settings
    browser.find_element("id", "error-close").click()
    assert not browser.find_element("id", "error").is_displayed()
    assert not errors(browser, allowed_status=404)
