import * as React from 'react';

import { IPanelServices, View } from '../services';
import { Compare } from './Compare';
import { ListView } from './ListView';
import { MetricChart } from './MetricChart';
import { RunDetails } from './RunDetails';

/** The sidebar's content: the run list, or one of the views opened from it. */
export function RunsPanel(props: {
  view: View;
  services: IPanelServices;
}): JSX.Element {
  const { view, services } = props;
  const activeId = view.kind === 'details' ? view.id : null;
  switch (view.kind) {
    case 'details':
      return <RunDetails key={view.id} id={view.id} services={services} />;
    case 'compare':
      return <Compare ids={view.ids} services={services} />;
    case 'chart':
      return <MetricChart metric={view.metric} services={services} />;
    default:
      return <ListView services={services} activeId={activeId} />;
  }
}
