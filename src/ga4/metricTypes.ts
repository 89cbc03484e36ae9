/**
 * GA4 metrics whose Data API type is TYPE_INTEGER, so their columns can be `bigint`: a report's
 * relation is created from its definition (store/reportTables.ts), not from a response's metric
 * headers. Every other metric, including custom ones, gets `double precision`, which holds
 * integers too.
 */
const INTEGER_METRICS = new Set([
  'active1DayUsers',
  'active7DayUsers',
  'active28DayUsers',
  'activeUsers',
  'addToCarts',
  'adUnitExposure',
  'advertiserAdClicks',
  'advertiserAdImpressions',
  'checkouts',
  'cohortActiveUsers',
  'cohortTotalUsers',
  'crashAffectedUsers',
  'ecommercePurchases',
  'engagedSessions',
  'eventCount',
  'firstTimePurchasers',
  'itemListClickEvents',
  'itemListViewEvents',
  'itemPromotionClickEvents',
  'itemPromotionViewEvents',
  'itemViewEvents',
  'itemsAddedToCart',
  'itemsCheckedOut',
  'itemsClickedInList',
  'itemsClickedInPromotion',
  'itemsPurchased',
  'itemsViewed',
  'itemsViewedInList',
  'itemsViewedInPromotion',
  'newUsers',
  'organicGoogleSearchClicks',
  'organicGoogleSearchImpressions',
  'promotionClicks',
  'promotionViews',
  'publisherAdClicks',
  'publisherAdImpressions',
  'screenPageViews',
  'scrolledUsers',
  'sessions',
  'totalPurchasers',
  'totalUsers',
  'transactions',
]);

/** Whether `apiName` is a standard metric of TYPE_INTEGER. */
function isIntegerMetric(apiName: string): boolean {
  return INTEGER_METRICS.has(apiName);
}

/** The column type of a metric in a report relation. */
export function metricColumnType(apiName: string): 'bigint' | 'double precision' {
  return isIntegerMetric(apiName) ? 'bigint' : 'double precision';
}
