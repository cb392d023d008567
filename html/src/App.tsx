import { BrowserRouter, Route, Routes } from 'react-router-dom';
import { AuthProvider } from './auth/AuthContext';
import { RequireAuth } from './auth/RequireAuth';
import { Layout } from './components/Layout';
import { DashboardPage } from './pages/DashboardPage';
import { LoginPage } from './pages/LoginPage';
import { NotFoundPage } from './pages/NotFoundPage';
import { StatusPage } from './pages/StatusPage';
import { AcceptInvitePage } from './pages/AcceptInvitePage';
import { ChatPage } from './pages/ChatPage';
import { VoicePage } from './pages/VoicePage';
import { ForgotPasswordPage } from './pages/ForgotPasswordPage';
import { ResetPasswordPage } from './pages/ResetPasswordPage';
import { ADMIN_ROLES, SUPER_ADMIN } from './admin/access';
import { RequireRole } from './components/RequireRole';
import { DealershipsPage } from './pages/DealershipsPage';
import { KnowledgeBasePage } from './pages/KnowledgeBasePage';
import { ReportsPage } from './pages/ReportsPage';
import { UsersPage } from './pages/UsersPage';

// Client-side routes. Deep links need the server's SPA fallback
// (nginx: `try_files $uri $uri/ /index.html;` for the web app's location).
export function App() {
  return (
    <AuthProvider>
      <BrowserRouter>
        <Routes>
          <Route path="/login" element={<LoginPage />} />
          <Route path="/forgot-password" element={<ForgotPasswordPage />} />
          <Route path="/reset-password" element={<ResetPasswordPage />} />
          <Route path="/accept-invite" element={<AcceptInvitePage />} />
          {/* The invitation e-mail links to /signup?token=… */}
          <Route path="/signup" element={<AcceptInvitePage />} />
          <Route element={<Layout />}>
            <Route
              index
              element={
                <RequireAuth>
                  <DashboardPage />
                </RequireAuth>
              }
            />
            <Route path="status" element={<StatusPage />} />
            <Route
              path="chat"
              element={
                <RequireAuth>
                  <ChatPage />
                </RequireAuth>
              }
            />
            <Route
              path="voice"
              element={
                <RequireAuth>
                  <VoicePage />
                </RequireAuth>
              }
            />
            <Route
              path="knowledge-base"
              element={
                <RequireAuth>
                  <RequireRole roles={ADMIN_ROLES}>
                    <KnowledgeBasePage />
                  </RequireRole>
                </RequireAuth>
              }
            />
            <Route
              path="users"
              element={
                <RequireAuth>
                  <RequireRole roles={ADMIN_ROLES}>
                    <UsersPage />
                  </RequireRole>
                </RequireAuth>
              }
            />
            <Route
              path="dealerships"
              element={
                <RequireAuth>
                  <RequireRole roles={SUPER_ADMIN}>
                    <DealershipsPage />
                  </RequireRole>
                </RequireAuth>
              }
            />
            <Route
              path="reports"
              element={
                <RequireAuth>
                  <RequireRole roles={ADMIN_ROLES}>
                    <ReportsPage />
                  </RequireRole>
                </RequireAuth>
              }
            />
            <Route path="*" element={<NotFoundPage />} />
          </Route>
        </Routes>
      </BrowserRouter>
    </AuthProvider>
  );
}
