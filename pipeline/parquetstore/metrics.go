package parquetstore

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	rows     *prometheus.CounterVec
	parts    *prometheus.GaugeVec
	replaced *prometheus.GaugeVec
}

func newMetrics() *metrics {
	return &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamrec_analytics_rows_total", Help: "Rows written to the embedded analytics store, by table and result.",
		}, []string{"table", "result"}),
		parts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamrec_analytics_parts", Help: "Live part files of the embedded analytics store, by table.",
		}, []string{"table"}),
		replaced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamrec_analytics_replaced_parts",
			Help: "Part files of the embedded analytics store that merges replaced, kept while a reader may hold them, by table.",
		}, []string{"table"}),
	}
}

// register registers the metrics and a queue depth gauge per table.
func (m *metrics) register(reg prometheus.Registerer, events chan *request[EventRow], items chan *request[ItemRow], recos chan *request[RecommendationRow]) error {
	depth := func(table string, n func() int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "streamrec_analytics_queue_depth",
			Help:        "Insert calls waiting for a table's writer goroutine.",
			ConstLabels: prometheus.Labels{"table": table},
		}, func() float64 { return float64(n()) })
	}
	for _, c := range []prometheus.Collector{
		m.rows, m.parts, m.replaced,
		depth(TableEvents, func() int { return len(events) }),
		depth(TableItems, func() int { return len(items) }),
		depth(TableRecommendations, func() int { return len(recos) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
