package transfer

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Parallel ranged requests must use separate TCP connections: against a
// server that offers HTTP/2 the client still speaks HTTP/1.1.
func TestClientAvoidsHTTP2(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Proto))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := NewClient(ClientOptions{InsecureSkipVerify: true})
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 {
		t.Fatalf("client negotiated %s; parallel ranges would share one connection", resp.Proto)
	}
	// The server really offers h2 (a stock client uses it).
	std := srv.Client()
	resp, err = std.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Skipf("test server did not offer HTTP/2 (%s)", resp.Proto)
	}
}
