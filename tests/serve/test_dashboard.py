"""The dashboard end to end in a real Chromium (Playwright): log in, a live camera tile fed by the
example video, the mood timeline drawn with data, an alert raised by a rule and acknowledged on
the alerts page, found acknowledged through the API; a privacy mask drawn on the snapshot. The
screenshots are kept under the test's folder and, when set, ``$LRFER_ARTIFACTS/dashboard``."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from lrfer.serve.config import Camera, Rule, ServeConfig, Zone

from ._live import PASSWORDS, REPO, LiveServer

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (CI installs it: apt-get install chromium)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _config(tmp_path: Path) -> ServeConfig:
    cfg = ServeConfig()
    cfg.server.db, cfg.server.data_dir = f"sqlite:///{tmp_path / 'lrfer.sqlite3'}", str(tmp_path)
    cfg.server.bucket_seconds, cfg.server.flush_seconds = 1, 0.5  # data on the page within seconds
    # a zone over the left of the view, where the two larger faces are
    cfg.cameras = [Camera(id="lounge", name="Lounge", url=str(REPO / "examples" / "far_scene.mp4"), loop=True, fps=2,
                          zones=[Zone(name="sofa", polygon=[[0, 0], [0.6, 0], [0.6, 1], [0, 1]])])]  # fmt: skip
    # the example's faces smile: a rule on smiles raises a real alert through the whole pipeline
    cfg.rules = [Rule(name="smiles", method="window", expressions=["happy"], threshold=0.3, minutes=0.1, min_observations=2, baseline="none", cooldown_minutes=60)]
    return cfg


class Shots:
    def __init__(self, page, folder: Path):
        self.page, self.folder, self.n = page, folder, 0
        folder.mkdir(parents=True, exist_ok=True)
        extra = os.environ.get("LRFER_ARTIFACTS")
        self.extra = Path(extra) / "dashboard" if extra else None

    def __call__(self, name: str) -> None:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.extra / path.name)


def _wait_alert(srv: LiveServer, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_ = srv.service.store.list_alerts(state="open", camera_id="lounge")
        if open_:
            return open_[0]
        time.sleep(0.25)
    raise AssertionError("the smiles rule raised no alert")


def test_dashboard_end_to_end(tmp_path):
    srv = LiveServer(_config(tmp_path), speed=4.0).start()  # the video plays 4x fast
    problems: list[str] = []
    try:
        srv.add_user("alice", "admin")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1024, "height": 768}, has_touch=True)  # a tablet at the nurses' station
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            # the page's first question (/api/me) is answered 401 before login: the one expected console error
            page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" and "401" not in m.text else None)
            shot = Shots(page, tmp_path / "screenshots")

            page.goto(srv.url + "/")
            page.get_by_label("Username").fill("alice")
            page.get_by_label("Password").fill(PASSWORDS["alice"])
            shot("login")
            page.get_by_role("button", name="Log in").click()

            tile = page.locator('.tile[data-camera="lounge"]')
            expect(tile.locator(".camera-state")).to_have_text("live")
            page.wait_for_function("() => +document.querySelector('.tile[data-camera=\"lounge\"] .faces-now')?.textContent > 0")
            expect(page.locator("#live")).to_have_text("live")  # the SSE stream is connected
            shot("overview")

            tile.click()
            page.wait_for_function(
                "() => document.querySelectorAll('#timeline .scatterlayer .trace').length > 0 && +document.querySelector('#timeline').dataset.points > 0"
            )
            page.get_by_role("button", name="Last 10 min").click()  # the camera started seconds ago: the short range shows it best
            page.wait_for_function(
                "() => document.querySelector('#timeline-note').textContent.includes('of 2 s') && +document.querySelector('#timeline').dataset.points >= 3"
            )
            drawn = page.eval_on_selector_all("#timeline .scatterlayer .trace path.js-fill", "ps => ps.map(p => (p.getAttribute('d') || '').length)")
            assert len(drawn) >= 2 and max(drawn) > 40, drawn  # Plotly drew filled areas, not empty traces
            expect(page.locator("#tracks tbody tr").first).to_be_visible()
            # mood through the day: this hour's bars, in the browser's time zone
            page.wait_for_function("() => +document.querySelector('#profile')?.dataset.hours > 0")
            assert page.locator("#profile .barlayer .trace").count() >= 1
            expect(page.locator("#profile-note")).to_contain_text("times in")
            # how big its faces are: the example's three faces, 17 to 48 px, one band each
            page.wait_for_function("() => +document.querySelector('#face-sizes')?.dataset.frames > 0")
            assert page.locator("#face-sizes .barlayer .trace").count() >= 3
            expect(page.locator("#face-sizes-note")).to_contain_text("under 24 px")
            # one zone's charts: the timeline and the day's hours for the sofa alone
            page.locator("#zone").select_option("sofa")
            page.wait_for_function("() => document.querySelector('#timeline').dataset.zone === 'sofa' && +document.querySelector('#timeline').dataset.points > 0")
            page.wait_for_function("() => document.querySelector('#profile').dataset.zone === 'sofa' && +document.querySelector('#profile').dataset.hours > 0")
            expect(page.locator("#timeline-note")).to_contain_text("zone “sofa”")
            page.wait_for_function("() => document.querySelector('#snapshot').naturalWidth > 0")
            shot("camera")

            alert = _wait_alert(srv)
            page.goto(srv.url + "/#/alerts")
            card = page.locator(f'[data-alert="{alert["id"]}"]')
            expect(card).to_be_visible()
            expect(page).to_have_title(re.compile(r"^\(\d+\) lrfer monitor$"))  # the open count on the tab
            shot("alerts-open")
            card.get_by_role("button", name="Acknowledge").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_label("Note (what you did)").fill("checked on the lounge, all smiles")
            shot("acknowledge-note")
            dialog.get_by_role("button", name="Acknowledge").click()
            expect(card).to_have_count(0)  # gone from the open list
            page.get_by_role("button", name="Acknowledged").click()
            expect(page.locator(f'[data-alert="{alert["id"]}"][data-state="acknowledged"]')).to_be_visible()
            shot("alerts-acknowledged")

            api = srv.login("alice")
            try:
                row = api.get(f"/api/alerts/{alert['id']}").json()
                assert row["state"] == "acknowledged" and row["acknowledged_by"] == "alice" and row["note"] == "checked on the lounge, all smiles"
                assert row["verdict"] is None  # "not sure (yet)", the dialog's first choice, judges nothing

                # resolved with staff's verdict, which the page's week summary and the API count
                acked = page.locator(f'[data-alert="{alert["id"]}"][data-state="acknowledged"]')
                acked.get_by_role("button", name="Resolve").click()
                dialog = page.get_by_role("dialog")
                dialog.get_by_label("False alarm: the person was fine").check()
                shot("resolve-verdict")
                dialog.get_by_role("button", name="Resolve").click()
                expect(acked).to_have_count(0)
                expect(page.locator("#alert-trust")).to_contain_text("1 false alarm")
                row = api.get(f"/api/alerts/{alert['id']}").json()
                assert row["state"] == "resolved" and row["verdict"] == "false_alarm"
                assert api.get("/api/alerts/summary").json()["false_alarm"] >= 1

                # settings: a privacy mask drawn by tapping three points on the snapshot, then saved
                page.goto(srv.url + "/#/settings/cameras")
                page.get_by_role("row", name="lounge").get_by_role("button", name="Edit").click()
                canvas = page.locator(".editor canvas")
                expect(canvas).to_be_visible()
                box = canvas.bounding_box()
                for fx, fy in ((0.05, 0.05), (0.3, 0.05), (0.05, 0.3)):
                    canvas.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
                page.get_by_role("button", name="Finish polygon").click()
                shot("mask-drawn")
                page.get_by_role("button", name="Save").click()
                expect(page.get_by_role("button", name="Add camera")).to_be_visible()
                masks = api.get("/api/cameras/lounge").json()["masks"]
                assert len(masks) == 1 and len(masks[0]) == 3 and masks[0][1][0] == pytest.approx(0.3, abs=0.02)

                # settings: a rule added on the dashboard, in force at once
                page.goto(srv.url + "/#/settings/rules")
                page.get_by_role("button", name="Add rule").click()
                page.get_by_label("Name").fill("night-fear")
                evidence_needed = page.get_by_label("From at least (5 s buckets of evidence)")
                expect(evidence_needed).to_have_value("6")  # a running sum (the default) needs less evidence than a window
                page.get_by_label("Decides by").select_option("window")
                expect(evidence_needed).to_have_value("12")
                page.get_by_label("Share above (%)").fill("60")
                shot("rule-form")
                page.get_by_role("button", name="Add rule").click()
                expect(page.get_by_role("row", name="night-fear")).to_be_visible()
                rule = {r["name"]: r for r in api.get("/api/rules").json()}["night-fear"]
                assert rule["source"] == "dashboard" and rule["threshold"] == pytest.approx(0.6)
                assert rule["method"] == "window" and rule["min_observations"] == 12
                assert "night-fear" in {r.name for r in srv.service.engine.rules}

                # a camera's alerts muted for a while by a nurse, seen on its tile, then on again
                page.goto(srv.url + "/#/camera/lounge")
                page.get_by_role("button", name="Mute alerts…").click()
                dialog = page.get_by_role("dialog")
                dialog.get_by_label("30 minutes").check()
                dialog.get_by_label("Why (for the others)").fill("music in the lounge")
                dialog.get_by_role("button", name="Mute").click()
                expect(page.locator("#mute")).to_contain_text("music in the lounge")
                muted = api.get("/api/cameras/lounge").json()["muted"]
                assert muted["by"] == "alice" and 29 * 60 < muted["until"] - time.time() <= 30 * 60
                page.goto(srv.url + "/#/")
                expect(page.locator('[data-camera="lounge"] .badge.muted')).to_be_visible()
                shot("camera-muted")
                page.goto(srv.url + "/#/camera/lounge")
                page.locator("#mute").get_by_role("button", name="Unmute").click()
                expect(page.get_by_role("button", name="Mute alerts…")).to_be_visible()
                assert api.get("/api/cameras/lounge").json()["muted"] is None

                # settings: a worker token scoped to its site and cameras, shown once
                page.goto(srv.url + "/#/settings/tokens")
                page.get_by_label("Name").fill("site-b worker")
                page.get_by_label("Site").fill("site-b")
                page.get_by_label("Camera ids").fill("entrance, till-1")
                page.get_by_role("button", name="Create token").click()
                created = page.get_by_role("dialog", name="Token created")
                expect(created).to_contain_text("Scope: site site-b; cameras entrance, till-1")
                shot("token-scoped")
                created.get_by_role("button", name="Close").click()
                expect(page.get_by_role("row", name="site-b worker")).to_contain_text("site site-b; cameras entrance, till-1")
                token = {t["name"]: t for t in api.get("/api/tokens").json()}["site-b worker"]
                assert token["role"] == "worker" and token["site"] == "site-b" and token["cameras"] == ["entrance", "till-1"]
            finally:
                api.close()

            page.set_viewport_size({"width": 390, "height": 844})  # a phone: the layout still works
            page.goto(srv.url + "/#/")
            expect(tile).to_be_visible()
            shot("phone-overview")

            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(srv.url + "/docs")  # the OpenAPI page: Swagger UI served locally, under the same CSP
            expect(page.locator(".opblock").first).to_be_visible(timeout=20000)
            expect(page.locator(".opblock-summary-path", has_text="/api/timeline").first).to_be_visible()
            shot("api-docs")
            browser.close()
        assert not problems, problems
        assert srv.app.state.server_errors == 0
    finally:
        srv.stop()
