// Activity: recent API and MCP requests. (A first version: the newest records; filters, the chart and the export
// come with the Activity work.)
import { $api } from '../api.ts';
import { formatDateTime } from '../format.ts';
import { PageTitle } from '../Layout.tsx';
import { QueryState } from '../states.tsx';

export function Activity() {
  const usage = $api.useQuery('get', '/v1/me/usage', { params: { query: { limit: 50 } } });
  return (
    <>
      <PageTitle>Activity</PageTitle>
      <p className="lead">Recent API and MCP requests, newest first.</p>
      <QueryState query={usage} what="activity" isEmpty={(records) => records.length === 0} empty={<p>No requests yet.</p>}>
        {(records) => (
          <table>
            <caption className="visually-hidden">Recent requests</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Channel</th>
                <th scope="col">Request</th>
                <th scope="col">Status</th>
                <th scope="col">Credits</th>
              </tr>
            </thead>
            <tbody>
              {records.map((record) => (
                <tr key={record.id}>
                  <td>{formatDateTime(record.created_at)}</td>
                  <td>{record.channel}</td>
                  <td>
                    <code>
                      {record.method} {record.endpoint}
                    </code>
                  </td>
                  <td>{record.status_code}</td>
                  <td>{record.credits_charged}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </QueryState>
    </>
  );
}
