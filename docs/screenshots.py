"""Regenerate docs/report-audit.png and docs/report-compare.png (needs chromium and chromium-driver).

    python3 docs/screenshots.py

Runs the default audit and a second one to compare with, opens both pages in headless Chromium at
1280 px, clicks the per-image table's worst row, and saves full-page screenshots beside this file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from vfmaudit.cli import main

HERE = Path(__file__).parent


def run(*args: str) -> None:
    try:
        main(list(args))
    except SystemExit as e:
        if e.code:
            raise


def shoot(driver, url: str, path: Path, click_worst: bool = False) -> None:
    driver.set_window_size(1280, 1000)
    driver.get(url)
    if click_worst:
        [h for h in driver.find_elements(By.CSS_SELECTOR, "#per-image thead th button")
         if h.text == "divergence_radius"][0].click()
        driver.find_element(By.CSS_SELECTOR, "#per-image tbody tr").click()
        driver.execute_script("document.getElementById('detail').scrollIntoView()")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(height, 4000))
    driver.save_screenshot(str(path))
    print(f"wrote {path}")


def main_() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        run("audit", "--out", str(t / "a"), "-q")
        run("audit", "--out", str(t / "b"), "-q", "--levels", "3", "--seed", "1")
        run("report", "compare", str(t / "a"), str(t / "b"), "--out", str(t / "compare.html"))
        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium")
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={t / 'p'}"):
            opts.add_argument(flag)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
        try:
            shoot(driver, (t / "a" / "report.html").as_uri(), HERE / "report-audit.png", click_worst=True)
            shoot(driver, (t / "compare.html").as_uri(), HERE / "report-compare.png")
        finally:
            driver.quit()


if __name__ == "__main__":
    main_()
