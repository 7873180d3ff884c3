import './no-eval.ts';
import { render } from 'preact';
import { getHubInfo } from './api.ts';
import { App } from './app.tsx';
import { setBureauTimeZone } from './format.ts';
import { setDemo } from './demo.tsx';
import './styles.css';

// Every time on every page reads in the hub's zone (KF_TIMEZONE): learn it before the first render, so that no
// page shows a time in a zone it then changes. A hub that cannot be reached leaves the default.
void getHubInfo()
  .then((r) => {
    if (r.ok) {
      setBureauTimeZone(r.data.timeZone);
      setDemo(r.data.demo);
    }
  })
  .finally(() => render(<App />, document.getElementById('app')!));
