/**
 * CPU / memory / disk / temperature charts with uPlot (lazy chunk: the terminal page imports this module
 * dynamically). Time axes are drawn in the bureau's time zone, whatever the browser's.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { getTelemetry } from '../api.ts';
import { useResource } from '../hooks.ts';
import { t, type MessageKey } from '../i18n/index.ts';
import { useLanguage } from '../i18n/index.ts';
import { bureauTimeZone, formatShort, formatTime } from '../format.ts';
import { Loadable } from '../components/ui.tsx';
import type { TelemetryPoint } from '../model.ts';

const METRICS: { key: keyof Omit<TelemetryPoint, 't'>; label: MessageKey; unit: string; color: string; max?: number }[] = [
  { key: 'cpu', label: 'terminal.cpu', unit: '%', color: '#1d6fd8', max: 100 },
  { key: 'mem', label: 'terminal.memory', unit: '%', color: '#8a3ffc', max: 100 },
  { key: 'disk', label: 'terminal.disk', unit: '%', color: '#0f8a5f', max: 100 },
  { key: 'temp', label: 'terminal.temperature', unit: '°C', color: '#d2691e' },
];

function Chart(props: { points: TelemetryPoint[]; metric: (typeof METRICS)[number]; from: number; to: number }) {
  const el = useRef<HTMLDivElement>(null);
  const lang = useLanguage();
  useEffect(() => {
    const host = el.current;
    if (!host) return;
    const xs = props.points.map((p) => p.t / 1000);
    const ys = props.points.map((p) => p[props.metric.key]);
    const width = Math.max(240, host.clientWidth);
    const plot = new uPlot(
      {
        width,
        height: 150,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), bureauTimeZone()),
        legend: { show: false },
        scales: {
          x: { time: true, min: props.from / 1000, max: props.to / 1000 },
          y: props.metric.max ? { range: [0, props.metric.max] } : { auto: true },
        },
        axes: [
          // Axis labels in the page's language and the bureau's zone (uPlot's own are English, browser zone).
          { values: (_u, splits) => splits.map((s) => (props.to - props.from > 2 * 86_400_000 ? formatShort(s * 1000) : formatTime(s * 1000).slice(0, 5))) },
          { values: (_u, vals) => vals.map((v) => `${v}${props.metric.unit}`), size: 56 },
        ],
        series: [{}, { label: t(props.metric.label), stroke: props.metric.color, width: 1.5, fill: `${props.metric.color}22`, spanGaps: false }],
      },
      [xs, ys as (number | null)[]],
      host,
    );
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(240, host.clientWidth), height: 150 }));
    ro.observe(host);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [props.points, props.metric, props.from, props.to, lang]);
  const last = [...props.points].reverse().find((p) => p[props.metric.key] !== null)?.[props.metric.key];
  return (
    <figure class="chart" data-metric={props.metric.key}>
      <figcaption>
        {t(props.metric.label)}
        {last !== undefined && last !== null && <span class="muted"> · {last.toFixed(0)} {props.metric.unit}</span>}
      </figcaption>
      <div ref={el} role="img" aria-label={t(props.metric.label)} />
    </figure>
  );
}

export function Charts(props: { id: string; range: string; ms: number; bucket: '5m' | '1h' | 'rollup' }) {
  const res = useResource<{ points: TelemetryPoint[]; to: number }>(() => {
    const to = new Date();
    return getTelemetry(props.id, new Date(to.getTime() - props.ms), to, props.bucket).then((r) =>
      r.ok ? { ok: true as const, data: { points: r.data, to: to.getTime() } } : r,
    );
  }, [props.id, props.range]);
  return (
    <Loadable res={res} what={t('terminal.health')}>
      {(d) =>
        d.points.length === 0 ? (
          <p class="muted">{t('terminal.noSamples')}</p>
        ) : (
          <div class="charts">
            {METRICS.map((m) => (
              <Chart key={m.key} points={d.points} metric={m} from={d.to - props.ms} to={d.to} />
            ))}
          </div>
        )
      }
    </Loadable>
  );
}
