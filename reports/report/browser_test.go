package report

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lossbench/lossbench/reports/result"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// findChromium returns a headless-capable Chromium, "" when none is
// installed (make deps installs Debian's chromium).
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// pageCheck is what the browser saw.
type pageCheck struct {
	Images       int      `json:"images"`
	Broken       []string `json:"broken"`
	MatrixRows   int      `json:"matrixRows"`
	MatrixCells  int      `json:"matrixCells"`
	MatrixHeight float64  `json:"matrixHeight"`
	External     []string `json:"external"`
	// The headline: the DR matrix's rows and cells with figures, the
	// trade-off chart's width; every in-page link without a target, and
	// every other link (checked on disk).
	DRRows       int      `json:"drRows"`
	DRCells      int      `json:"drCells"`
	TradeOffW    int      `json:"tradeOffW"`
	DeadAnchors  []string `json:"deadAnchors"`
	Files        []string `json:"files"`
	AnchorsTotal int      `json:"anchorsTotal"`
}

const pageScript = `(() => {
  const imgs = Array.from(document.images);
  const m = document.getElementById('loss-matrix');
  const dr = document.getElementById('dr-matrix');
  const tr = document.querySelector('#fig-tradeoff img');
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'));
  const ext = Array.from(document.querySelectorAll('[src],link[href]'))
    .map(e => e.getAttribute('src') || e.getAttribute('href'))
    .filter(u => /^(https?:)?\/\//.test(u));
  return {
    images: imgs.length,
    broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
    matrixRows: m ? m.tBodies[0].rows.length : 0,
    matrixCells: m ? m.querySelectorAll('tbody td.noloss, tbody td.wait, tbody td.loss, tbody td.na').length : 0,
    matrixHeight: m ? m.getBoundingClientRect().height : 0,
    external: ext,
    drRows: dr ? dr.tBodies[0].rows.length : 0,
    drCells: dr ? dr.querySelectorAll('tbody td.noloss, tbody td.wait, tbody td.loss').length : 0,
    tradeOffW: tr ? tr.naturalWidth : 0,
    deadAnchors: links.filter(h => h.startsWith('#') && !document.getElementById(decodeURIComponent(h.slice(1)))),
    files: links.filter(h => !h.startsWith('#')),
    anchorsTotal: links.filter(h => h.startsWith('#')).length,
  };
})()`

// TestReportInBrowser opens report.html from disk in headless Chromium,
// checks every image decoded, the headline (the DR matrix and the
// trade-off chart) and the loss matrix render and every link leads
// somewhere (an element of the page, or a file beside it), and saves a
// screenshot beside the report (report.png, the whole page; report-top.png,
// the first screen). LOSSBENCH_BROWSER_REPORT
// names another report.html to check instead of the generated one.
func TestReportInBrowser(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		t.Skip("no chromium binary found (install Debian's chromium: make deps / apt-get install -y chromium)")
	}
	page := os.Getenv("LOSSBENCH_BROWSER_REPORT")
	wantImages, wantRows := -1, -1
	if page == "" {
		root := t.TempDir()
		writeResult(t, root, fakeResult("memory-crash", "memory", "broker-crash", 40, 1))
		writeResult(t, root, fakeResult("journal-crash", "journal-batch", "broker-crash", 0, 1))
		writeBench(t, root)
		in, err := Load(root)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Write(filepath.Join(root, "run-1"), in, Options{Host: &result.Environment{CPUs: 2, Kernel: "Linux test"}})
		if err != nil {
			t.Fatal(err)
		}
		page, wantImages, wantRows = rep.HTML(), len(rep.Figures), 2
	}
	abs, err := filepath.Abs(page)
	if err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	u := url.URL{Scheme: "file", Path: abs}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(u.String()),
		chromedp.WaitVisible(chromedp.CSS("#loss-matrix")),
		chromedp.Steps(func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](`Array.from(document.images).every(i => i.complete)`, chromedp.WithPollingTimeout(20*time.Second))(ctx, t)
			return chromedp.Void{}, err
		}),
	); err != nil {
		t.Fatalf("chromium %s on %s: %v", bin, u.String(), err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[pageCheck](pageScript))
	if err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	// Quality 100 makes a PNG (below it, a JPEG).
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	top, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(abs), "report-top.png"), top, 0o644); err != nil {
		t.Fatal(err)
	}
	screenshot := filepath.Join(filepath.Dir(abs), "report.png")
	if err := os.WriteFile(screenshot, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v; screenshot %s (%d bytes)", got, screenshot, len(shot))

	if got.Images == 0 || len(got.Broken) > 0 {
		t.Errorf("%d images, not loaded: %v", got.Images, got.Broken)
	}
	if wantImages >= 0 && got.Images != wantImages {
		t.Errorf("%d images in the page, want %d", got.Images, wantImages)
	}
	if got.MatrixRows == 0 || got.MatrixCells == 0 || got.MatrixHeight < 20 {
		t.Errorf("loss matrix did not render: %+v", got)
	}
	if wantRows >= 0 && (got.MatrixRows != wantRows || got.MatrixCells != 2) {
		t.Errorf("matrix %d rows, %d coloured cells; want %d, 2", got.MatrixRows, got.MatrixCells, wantRows)
	}
	if got.DRRows == 0 || got.DRCells == 0 {
		t.Errorf("headline (DR matrix) did not render: %+v", got)
	}
	if wantRows >= 0 && (got.DRRows != len(scenario.MatrixRows) || got.DRCells != 2 || got.TradeOffW < 600) {
		t.Errorf("headline: %d rows, %d coloured cells, trade-off chart %d px wide; want %d, 2, >= 600", got.DRRows, got.DRCells, got.TradeOffW, len(scenario.MatrixRows))
	}
	if len(got.DeadAnchors) > 0 || got.AnchorsTotal == 0 {
		t.Errorf("%d in-page links, without a target: %v", got.AnchorsTotal, got.DeadAnchors)
	}
	for _, f := range got.Files {
		u, err := url.Parse(f)
		if err != nil || u.Scheme != "" {
			t.Errorf("link %q: not a relative file link (%v)", f, err)
			continue
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(abs), filepath.FromSlash(u.Path))); err != nil {
			t.Errorf("link %q: %v", f, err)
		}
	}
	if len(got.External) > 0 {
		t.Errorf("page refers to the network: %v", got.External)
	}
	if len(shot) < 10000 {
		t.Errorf("screenshot of %d bytes", len(shot))
	}
}
