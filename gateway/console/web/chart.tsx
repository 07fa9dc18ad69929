/**
 * A chart.js bar chart on a canvas, registered with only what the console draws, and coloured for
 * the dark theme. The figures are also in a table beside each chart (what the tests assert).
 */
import { useEffect, useRef } from 'preact/hooks';
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip, type ChartDataset } from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);
Chart.defaults.color = '#d7dde8';
Chart.defaults.borderColor = 'rgba(255,255,255,0.12)';
Chart.defaults.font.family = '"Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", system-ui, sans-serif';

export const COLORS = { panic: '#ff4d4f', intrusion: '#ffa940', help: '#40a9ff', duress: '#d000ff', ok: '#52c41a', grey: '#8c8c8c', flag: '#ff4d4f' };

export function BarChart(props: { name: string; labels: string[]; datasets: ChartDataset<'bar', number[]>[]; stacked?: boolean; horizontal?: boolean }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const chart = new Chart(ref.current!, {
      type: 'bar',
      data: { labels: props.labels, datasets: props.datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: props.horizontal ? 'y' : 'x',
        scales: { x: { stacked: props.stacked ?? false }, y: { stacked: props.stacked ?? false, beginAtZero: true } },
        plugins: { legend: { position: 'bottom' } },
      },
    });
    return () => chart.destroy();
  }, [JSON.stringify([props.labels, props.datasets.map((d) => [d.label, d.data])])]);
  return (
    <div class="chart-box">
      <canvas ref={ref} data-chart-canvas={props.name} />
    </div>
  );
}
