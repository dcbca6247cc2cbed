"""report.html and the compare page in a real browser: the system's headless Chromium via Selenium.

`.ci/run` installs Debian's chromium and chromium-driver where they are missing, so CI runs these on
every machine; elsewhere the browser tests (only they) skip with the reason. No browser is ever
downloaded by the tests.
"""

import json
import shutil
from pathlib import Path

import pytest

from cli_runner import run_cli
from vfmaudit import perturb

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
DOCS = Path(__file__).parent.parent / "docs"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and DRIVER):
        pytest.skip("headless Chromium and chromedriver are not installed here (.ci/run installs them: "
                    "apt-get install chromium chromium-driver)")
    from selenium import webdriver  # a declared dev dependency: missing is a failure, not a skip
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_window_size(1280, 1000)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def audits(tmp_path_factory, default_audit):
    """The default audit (the session's), and an audit of another (tiny) model with fewer levels to compare."""
    res, default_out = default_audit
    assert res.returncode == 0, res.stderr
    d = tmp_path_factory.mktemp("audits")
    shutil.copytree(default_out, d / "a")  # the tests write screenshots and pages next to it
    assert run_cli("audit", "--out", d / "b", "-q", "--levels", "3", "--seed", "1", "-m", "timm:test_vit").returncode == 0
    return d / "a", d / "b"


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def overflowing(driver) -> list[str]:
    """Elements wider than the viewport, outside the scrollable table containers."""
    return driver.execute_script("""
        const w = document.documentElement.clientWidth, bad = [];
        if (document.documentElement.scrollWidth > w + 1) bad.push('page scrolls sideways: ' + document.documentElement.scrollWidth);
        for (const el of document.body.querySelectorAll('*')) {
          if (el.closest('.scroll')) continue;
          const r = el.getBoundingClientRect();
          if (r.width > 0 && r.right > w + 1) bad.push(el.tagName + '.' + el.className + ' right=' + Math.round(r.right));
        }
        return bad.slice(0, 10);""")


def test_audit_report_in_a_browser(browser, audits):
    from selenium.webdriver.common.by import By

    page = audits[0] / "report.html"
    assert page.stat().st_size < 5_000_000  # the default audit's page stays small
    browser.get(page.as_uri())
    assert console_errors(browser) == []
    assert overflowing(browser) == []
    images = browser.find_elements(By.CSS_SELECTOR, ".strip img")
    assert images and all(img.get_attribute("alt") for img in images)

    headers = browser.find_elements(By.CSS_SELECTOR, "#per-image thead th button")
    [radius_header] = [h for h in headers if h.text == "divergence_radius"]
    radius_header.click()
    column = [h.text for h in headers].index("divergence_radius")
    values = [float(r.find_elements(By.CSS_SELECTOR, "th, td")[column].text)
              for r in browser.find_elements(By.CSS_SELECTOR, "#per-image tbody tr")]
    rows = json.loads((audits[0] / "report.json").read_text())["families"]
    assert len(values) == 12 * len(rows) and values == sorted(values, reverse=True)  # largest first
    th = browser.find_element(By.XPATH, "//table[@id='per-image']//th[button[text()='divergence_radius']]")
    assert th.get_attribute("aria-sort") == "descending"

    first = browser.find_element(By.CSS_SELECTOR, "#per-image tbody tr")
    image_id, family = [c.text for c in first.find_elements(By.CSS_SELECTOR, "th, td")[:2]]
    first.click()
    detail = browser.find_element(By.ID, "detail")
    assert image_id in detail.text and family in detail.text
    strip = detail.find_elements(By.CSS_SELECTOR, ".strip img")
    assert len(strip) == 1 + len(rows[family]["levels"])  # clean + every level

    family_filter = browser.find_element(By.ID, "f-family")
    browser.execute_script("arguments[0].value = 'jpeg'; arguments[0].dispatchEvent(new Event('input'));",
                           family_filter)
    shown = browser.find_elements(By.CSS_SELECTOR, "#per-image tbody tr")
    assert len(shown) == 12 and all(r.find_elements(By.CSS_SELECTOR, "td")[0].text == "jpeg" for r in shown)
    assert console_errors(browser) == []
    browser.save_screenshot(str(audits[0] / "screenshot.png"))


def test_compare_page_in_a_browser(browser, audits, tmp_path):
    from selenium.webdriver.common.by import By

    out = tmp_path / "compare.html"
    res = run_cli("report", "compare", audits[0], audits[1], "--out", out, "--json", tmp_path / "c.json")
    assert res.returncode == 0, res.stderr
    browser.get(out.as_uri())
    assert console_errors(browser) == []
    assert overflowing(browser) == []
    families = browser.find_elements(By.CSS_SELECTOR, "#families tbody tr")
    data = json.loads((tmp_path / "c.json").read_text())
    assert len(families) == len(data["families"]) == len(perturb.get_preset("everyday").families)  # the default
    assert browser.find_elements(By.CSS_SELECTOR, ".plot svg")  # the per-image scatter
    moved = browser.find_elements(By.CSS_SELECTOR, "#moved tbody tr")
    assert len(moved) == len(data["moved_most"]) > 0
    browser.save_screenshot(str(tmp_path / "compare.png"))


def test_docs_screenshots_exist():
    for name in ("report-audit.png", "report-compare.png"):
        assert (DOCS / name).stat().st_size > 10_000, f"docs/{name} is missing"
