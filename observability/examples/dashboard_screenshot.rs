//! Saves a PNG of a running dashboard, taken by headless Chromium through
//! chromedriver (how `docs/dashboard.png` is made):
//!
//! ```text
//! cargo run --release -p candado-demo -- --isolation process --scenario chaos --serve 127.0.0.1:9464 &
//! cargo run -p candado-observe --example dashboard_screenshot -- http://127.0.0.1:9464/ docs/dashboard.png
//! ```
//!
//! Needs `chromium` and `chromedriver` on the PATH (Debian: `apt-get
//! install chromium chromium-driver`).

#[path = "../tests/common/browser.rs"]
mod browser;

use std::time::Duration;

use anyhow::{bail, Context as _};
use browser::Browser;
use fantoccini::Locator;

const BOUND: Duration = Duration::from_secs(20);

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(path)) = (args.next(), args.next()) else {
        bail!("usage: dashboard_screenshot URL OUTPUT.png");
    };
    let (driver, chromium) = browser::find().map_err(anyhow::Error::msg)?;
    actix::System::new().block_on(async move {
        let browser = Browser::start(&driver, &chromium, BOUND).await;
        let client = &browser.client;
        client.goto(&url).await?;
        client
            .wait()
            .at_most(BOUND)
            .for_element(Locator::Css(
                "section.pool tr.dead, section.pool svg polyline",
            ))
            .await
            .context("the dashboard did not render a pool")?;
        // Two more polls: the charts and the event log fill in.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let height = client
            .execute("return document.documentElement.scrollHeight", vec![])
            .await?
            .as_u64()
            .unwrap_or(1200);
        client
            .set_window_size(1440, height.clamp(600, 2400) as u32)
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = client.screenshot().await?;
        std::fs::write(&path, png).with_context(|| format!("cannot write {path}"))?;
        browser.close().await;
        eprintln!("saved {path}");
        Ok(())
    })
}
