package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hostless/hostless/internal/function"
)

// Metrics are the platform's Prometheus metrics, in a registry of their
// own (no global state).
type Metrics struct {
	reg         *prometheus.Registry
	invocations *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	coldStarts  *prometheus.CounterVec
	throttles   *prometheus.CounterVec
	queueWait   *prometheus.HistogramVec
}

// NewMetrics registers the platform's metrics with the Go runtime's and the
// process's.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostless_invocations_total",
			Help: "Invocations by function, version and status (ok, error, timeout, oom, throttled).",
		}, []string{"function", "version", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hostless_invocation_duration_seconds",
			Help:    "Duration of invocations that ran: the instance's start on a cold call, then the call.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}, []string{"function"}),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostless_cold_starts_total",
			Help: "Invocations that started a new instance.",
		}, []string{"function"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostless_throttles_total",
			Help: "Invocations refused with 429, by reason.",
		}, []string{"function", "reason"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hostless_queue_wait_seconds",
			Help:    "Time invocations waited for a free concurrency slot, when they had to wait (throttled ones included).",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 2.5, 5, 10},
		}, []string{"function"}),
	}
	m.reg.MustRegister(m.invocations, m.duration, m.coldStarts, m.throttles, m.queueWait,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Observe counts a finished invocation.
func (m *Metrics) Observe(rec *function.Invocation) {
	m.invocations.WithLabelValues(rec.Function, strconv.Itoa(rec.Version), rec.Status).Inc()
	if rec.Status == function.StatusThrottled {
		return // counted by reason in ObserveThrottle
	}
	if rec.BilledMS > 0 {
		m.duration.WithLabelValues(rec.Function).Observe(rec.Duration.Seconds())
	}
	if rec.Cold {
		m.coldStarts.WithLabelValues(rec.Function).Inc()
	}
}

// Forget drops the series of a deleted function, so deleted functions don't
// accumulate.
func (m *Metrics) Forget(fn string) {
	l := prometheus.Labels{"function": fn}
	m.invocations.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.coldStarts.DeletePartialMatch(l)
	m.throttles.DeletePartialMatch(l)
	m.queueWait.DeletePartialMatch(l)
}

// ObserveThrottle counts a refused call by reason: concurrency (the
// function's limit), platform_concurrency or platform_memory.
func (m *Metrics) ObserveThrottle(fn, reason string) {
	m.throttles.WithLabelValues(fn, reason).Inc()
}

// ObserveQueueWait records how long an invocation waited for a slot,
// whether it then got one or was throttled.
func (m *Metrics) ObserveQueueWait(fn string, d time.Duration) {
	m.queueWait.WithLabelValues(fn).Observe(d.Seconds())
}

// Gauge registers a gauge read at scrape time.
func (m *Metrics) Gauge(name, help string, labels prometheus.Labels, value func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, value))
}

// Counter registers a counter read at scrape time.
func (m *Metrics) Counter(name, help string, value func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, value))
}

// Register adds a collector of metrics made at scrape time.
func (m *Metrics) Register(c prometheus.Collector) { m.reg.MustRegister(c) }

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}
