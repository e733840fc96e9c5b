import { defineConfig, devices } from '@playwright/test';
import { chromium } from './playwright.config';

// Measurements, not tests: run by scripts/bench against the release build (SWITCHYARD_BIN and
// the optimised client in target/site). They write their figures into BENCHMARKS.md.
const port = Number(process.env.MEASURE_PORT || 3700);

export default defineConfig({
  testDir: './measure',
  timeout: 180_000,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results-measure',
  use: { baseURL: `http://127.0.0.1:${port}`, launchOptions: chromium },
  projects: [{ name: 'desktop', use: { ...devices['Desktop Chrome'], viewport: { width: 1280, height: 800 }, launchOptions: chromium } }],
  webServer: {
    command: `bash ./start-server.sh ${port}`,
    url: `http://127.0.0.1:${port}/readyz`,
    timeout: 60_000,
    reuseExistingServer: false,
    env: { E2E_DATA: `${__dirname}/.data-measure` },
  },
});
