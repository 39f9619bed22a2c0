package modules

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// tlsModuleServer serves goodModule over TLS on 127.0.0.1 and returns its
// URL and a PEM file with its certificate.
func tlsModuleServer(t *testing.T) (string, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/auth/remote_auth.py", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(goodModule))
	})
	mux.HandleFunc("/big.py", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("#", MaxSourceSize+10)))
	})
	mux.HandleFunc("/to-http.py", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/auth.py", http.StatusFound)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, block, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.URL, ca
}

func TestFetchSourceChecksSHA256(t *testing.T) {
	url, ca := tlsModuleServer(t)
	want := sha256Hex([]byte(goodModule))
	ctx := context.Background()

	got, err := FetchSource(ctx, url+"/auth/remote_auth.py", FetchOptions{SHA256: want, CACertFile: ca, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if got.Name != "remote_auth" || string(got.Data) != goodModule || got.SHA256 != want {
		t.Errorf("fetched %q name %q sha %s", got.Data, got.Name, got.SHA256)
	}

	wrong := strings.Repeat("0", 64)
	_, err = FetchSource(ctx, url+"/auth/remote_auth.py", FetchOptions{SHA256: wrong, CACertFile: ca})
	e := apperr.As(err)
	if e.Code != "checksum_mismatch" || !strings.Contains(e.Message, "want "+wrong+", got "+want) {
		t.Errorf("wrong sha256: %s %q", e.Code, e.Message)
	}
}

func TestFetchSourceRejects(t *testing.T) {
	url, ca := tlsModuleServer(t)
	ctx := context.Background()
	sha := sha256Hex([]byte(goodModule))
	cases := []struct {
		name, url, ca, code string
	}{
		{"plain http", strings.Replace(url, "https://", "http://", 1) + "/auth/remote_auth.py", ca, "insecure_url"},
		{"unknown CA", url + "/auth/remote_auth.py", "", "tls_verify_failed"},
		{"not found", url + "/nope.py", ca, "download_failed"},
		{"too large", url + "/big.py", ca, "download_failed"},
		{"redirect to http", url + "/to-http.py", ca, "insecure_url"},
		{"user in URL", "https://user:secret@127.0.0.1/x.py", ca, "invalid_url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FetchSource(ctx, c.url, FetchOptions{SHA256: sha, CACertFile: c.ca, Timeout: 5 * time.Second})
			if got := apperr.As(err).Code; got != c.code {
				t.Errorf("code = %s (%v), want %s", got, err, c.code)
			}
			if c.name == "redirect to http" && apperr.As(err).Kind != apperr.KindUsage {
				t.Errorf("a redirect to http:// is %v, want a usage error like an http:// URL", apperr.As(err).Kind)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows the URL's password: %v", err)
			}
		})
	}
}

func TestNormalizeSHA256(t *testing.T) {
	sha := sha256Hex([]byte("x"))
	for _, in := range []string{sha, strings.ToUpper(sha), "sha256:" + sha, "SHA256:" + strings.ToUpper(sha), " " + sha + " "} {
		if got, err := NormalizeSHA256(in); err != nil || got != sha {
			t.Errorf("NormalizeSHA256(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "abc", sha + "0", strings.Repeat("g", 64)} {
		if _, err := NormalizeSHA256(in); apperr.As(err).Kind != apperr.KindUsage {
			t.Errorf("NormalizeSHA256(%q) accepted or wrong kind: %v", in, err)
		}
	}
}
