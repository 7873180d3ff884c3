/**
 * The demo's banner: `pnpm start` runs the hub with KF_DEMO=1 (its /api/v1/health says `demo: true`), and every page
 * then says that the terminals are simulated, so a visitor never takes the seeded month for a real fleet.
 */
import { t } from './i18n/index.ts';

let demo = false;

export function setDemo(on: boolean): void {
  demo = on;
}

export function DemoBanner() {
  if (!demo) return null;
  return (
    <div class="banner demo" role="note" data-testid="demo-banner">
      {t('demo.banner')}
    </div>
  );
}
